"""WSGI entry point (gunicorn jitportal.wsgi:application)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "jitportal.settings")

application = get_wsgi_application()
