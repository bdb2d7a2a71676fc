"""The stream's settings as system checks: one line each (``manage.py check``).

The settings module already refuses to start production with any of these problems; the
checks re-validate the effective settings (a test's override, a development run).
"""

from __future__ import annotations

from typing import Any

from django.core.checks import Error, Tags, register

from . import config


@register(Tags.security)
def stream_settings(app_configs: Any, **kwargs: Any) -> list[Error]:
    return [Error(f"{problem}.", id="audit.E001") for problem in config.problems()]
