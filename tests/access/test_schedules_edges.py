"""Resource schedules at their edges: each malformed schedule is refused with its rule, and
the words for a schedule's days and for a reader in the schedule's own zone."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from apps.access import schedules

WINDOW = {"after": "09:00", "before": "17:00", "timezone": "Europe/Berlin"}


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("mon-fri 09:00-17:00", "a schedule is an object with days, after, before and timezone"),
        ({**WINDOW, "days": "mon,,fri"}, "empty item in the day list 'mon,,fri'"),
        ({**WINDOW, "days": "  "}, 'days must be a string like "mon-fri"'),
        ({**WINDOW, "days": ["mon"]}, 'days must be a string like "mon-fri"'),
        ({**WINDOW, "days": "mon-funday"}, "'funday' is not a day of the week (mon … sun)"),
        ({**WINDOW, "days": "mon", "after": "9:00"}, "after must be a 24-hour time like 09:00"),
        ({**WINDOW, "days": "mon", "before": 1700}, "before must be a 24-hour time like 09:00"),
        (
            {**WINDOW, "days": "mon", "timezone": 1},
            "unknown time zone 1 (use an IANA name like Europe/Berlin)",
        ),
        ({"days": "mon", "after": "09:00"}, "the schedule needs before, timezone"),
    ],
)
def test_a_malformed_schedule_is_refused_with_its_rule(value: Any, error: str) -> None:
    assert schedules.schedule_errors(value) == [error]


@pytest.mark.parametrize(
    ("days", "words"),
    [
        ("*", "Every day"),
        ("mon-sun", "Every day"),
        ("sat,sun", "Sat-Sun"),
        ("Monday-Friday", "Mon-Fri"),
        ("fri-mon", "Mon, Fri, Sat, Sun"),
        ("wed", "Wed"),
    ],
)
def test_days_in_words(days: str, words: str) -> None:
    schedule = schedules.parse({**WINDOW, "days": days})
    assert schedule is not None
    assert schedules.describe(schedule) == f"{words} 09:00-17:00 (Europe/Berlin)"


def test_a_reader_in_the_schedules_zone_gets_no_translation() -> None:
    schedule = schedules.parse({**WINDOW, "days": "mon-fri"})
    assert schedule is not None
    now = datetime(2026, 9, 1, 7, 0, tzinfo=UTC)
    assert schedules.describe_for(schedule, ZoneInfo("Europe/Berlin"), now) == (
        "Mon-Fri 09:00-17:00 (Europe/Berlin)"
    )
    assert schedules.describe_for(schedule, ZoneInfo("America/New_York"), now) == (
        "Mon-Fri 09:00-17:00 (Europe/Berlin); for you (America/New_York) the next window "
        "is Tue 03:00-11:00"
    )
