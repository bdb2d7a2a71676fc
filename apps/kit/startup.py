"""Start-up refusals as one readable line, not a traceback.

The settings module raises ``ImproperlyConfigured`` when production is unsafe (a missing
secret, no database URL, ...). Every entry point — ``manage.py``, gunicorn's WSGI module
and the Celery app — loads the settings through ``load_settings_or_exit`` first, so an
operator sees ``jitportal refuses to start: <why>`` and the process exits 3, which
gunicorn's arbiter and container health checks treat as a failed boot.
"""

from __future__ import annotations

import os
import sys

EXIT_REFUSED = 3


def load_settings_or_exit() -> None:
    """Load Django's settings; on an unsafe configuration print one line and exit."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "jitportal.settings")
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    try:
        settings.INSTALLED_APPS  # noqa: B018  (touching a setting loads the module)
    except ImproperlyConfigured as exc:
        sys.stderr.write(f"jitportal refuses to start: {exc}\n")
        sys.stderr.flush()
        raise SystemExit(EXIT_REFUSED) from None
