"""WSGI entry point (gunicorn jitportal.wsgi:application)."""

import os

from django.core.wsgi import get_wsgi_application

from apps.kit.startup import load_settings_or_exit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "jitportal.settings")
load_settings_or_exit()

application = get_wsgi_application()

# Production without `collectstatic` would answer 500 on every page: refuse to start.
from jitportal.checks import refuse_to_start_without_static  # noqa: E402

refuse_to_start_without_static()
