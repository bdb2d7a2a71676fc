"""Recurring review periods, and the review settings' rules. Pure Python (no Django), so
the settings module can refuse a bad value at start-up and the system checks can
re-validate the effective settings with the same rules.

A schedule recurs ``every`` month, quarter, half-year or year; its periods start at 00:00
UTC on the first day of January, April, July and October for quarters (January and July
for half-years, January for years, every month's first day for months).
"""

from __future__ import annotations

from datetime import UTC, datetime

EVERY = {"month": 1, "quarter": 3, "half-year": 6, "year": 12}

__all__ = ["EVERY", "period_start", "setting_problems"]


def period_start(every: str, at: datetime) -> datetime:
    """The start of the period of schedule ``every`` that contains ``at``."""
    months = EVERY[every]
    at = at.astimezone(UTC)
    month = (at.month - 1) // months * months + 1
    return datetime(at.year, month, 1, tzinfo=UTC)


def setting_problems(
    *,
    every: str,
    owner: str,
    due_days: int,
    remind_days: int,
    long_grant_hours: int,
    first_period_days: int,
) -> list[str]:
    """What is wrong with the ACCESS_REVIEW_* settings, one sentence each."""
    found = []
    if every and every not in EVERY:
        found.append(f"ACCESS_REVIEW_EVERY must be empty or one of {', '.join(EVERY)}")
    if every and not owner.strip():
        found.append("ACCESS_REVIEW_EVERY is set but ACCESS_REVIEW_OWNER (an email) is not")
    if every and not 1 <= due_days <= 365:
        found.append("ACCESS_REVIEW_DUE_DAYS must be between 1 and 365")
    if not 0 <= remind_days <= 90:
        found.append("ACCESS_REVIEW_REMIND_DAYS must be between 0 and 90")
    if not 1 <= long_grant_hours <= 24 * 366:
        found.append("ACCESS_REVIEW_LONG_GRANT_HOURS must be between 1 and 8784")
    if not 1 <= first_period_days <= 3660:
        found.append("ACCESS_REVIEW_FIRST_PERIOD_DAYS must be between 1 and 3660")
    return found
