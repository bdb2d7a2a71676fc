"""The review settings as system checks, one line each (the settings module refuses the
same problems at start-up; these re-validate the effective settings)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, register

from .periods import setting_problems


@register()
def review_settings(app_configs: Any, **kwargs: Any) -> list[Error]:
    problems = setting_problems(
        every=settings.ACCESS_REVIEW_EVERY,
        owner=settings.ACCESS_REVIEW_OWNER,
        due_days=settings.ACCESS_REVIEW_DUE_DAYS,
        remind_days=settings.ACCESS_REVIEW_REMIND_DAYS,
        long_grant_hours=settings.ACCESS_REVIEW_LONG_GRANT_HOURS,
        first_period_days=settings.ACCESS_REVIEW_FIRST_PERIOD_DAYS,
    )
    return [Error(f"{problem}.", id="reviews.E001") for problem in problems]
