"""Recurring windows: "weekdays 09:00-17:00 Europe/Berlin" inside a grant's overall window.

A schedule is a small JSON object kept on a resource and copied onto each grant::

    {"days": "mon-fri", "after": "09:00", "before": "17:00", "timezone": "Europe/Berlin"}

It renders as two PPL criteria ANDed into the grant's rule (``day_of_week`` and
``time_of_day``, docs/ppl.md "Schedules"), and this module answers the questions the pages
and the reminders ask of it: when does the next window open, when does the current one
close, when does the last one end. Pure functions: no database, no Django.

Pomerium's documentation gives ``day_of_week`` no time zone, while ``time_of_day`` names
one. So that the rule means the same whichever zone Pomerium reads the day in, a schedule
is accepted only if its daily window falls inside one UTC day at every offset its zone
uses (09:00-17:00 Berlin does; 09:00-17:00 Los Angeles does not, since 17:00 PST is 01:00
UTC the next day). The simulator reads ``day_of_week`` in UTC, the strictest reading.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from apps.accounts.timezones import valid_zone, zone_label

__all__ = [
    "Schedule",
    "criteria",
    "describe",
    "describe_for",
    "last_window_end",
    "parse",
    "rfc3339",
    "schedule_errors",
    "state_at",
    "windows",
]

KEYS = frozenset({"days", "after", "before", "timezone"})
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_LABELS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
# Enough days to meet every offset a zone uses in a year, DST or not.
_OFFSET_SAMPLE_DAYS = 366


@dataclass(frozen=True)
class Schedule:
    days: str  # as Pomerium reads it: "mon-fri", "mon,wed,fri", "fri-mon", "*"
    weekdays: frozenset[int]  # Monday = 0
    after: time
    before: time
    timezone: str

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def _day(name: str) -> int:
    key = name.strip().lower()
    if key in _DAYS:
        return _DAYS.index(key)
    if key in _FULL:
        return _FULL.index(key)
    raise ValueError(f"{name.strip()!r} is not a day of the week (mon … sun)")


def _weekdays(spec: str) -> frozenset[int]:
    if spec.strip() == "*":
        return frozenset(range(7))
    found: set[int] = set()
    for part in spec.split(","):
        if not part.strip():
            raise ValueError(f"empty item in the day list {spec!r}")
        first, dash, last = part.partition("-")
        day = _day(first)
        found.add(day)
        if dash:
            end = _day(last)
            while day != end:  # a range wraps past Sunday: fri-mon
                day = (day + 1) % 7
                found.add(day)
    return frozenset(found)


def _clock(value: object, key: str) -> time:
    if not isinstance(value, str) or not _HHMM.match(value):
        raise ValueError(f"{key} must be a 24-hour time like 09:00")
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


@lru_cache(maxsize=64)
def _offsets_minutes(zone_name: str) -> frozenset[int]:
    zone = ZoneInfo(zone_name)
    start = datetime(2026, 1, 1, 12, tzinfo=UTC)
    offsets = set()
    for n in range(_OFFSET_SAMPLE_DAYS):
        offset = (start + timedelta(days=n)).astimezone(zone).utcoffset()
        assert offset is not None
        offsets.add(int(offset.total_seconds() // 60))
    return frozenset(offsets)


def parse(value: object) -> Schedule | None:
    """A stored schedule as a ``Schedule``; ``None`` for no schedule. ValueError if invalid."""
    if value is None or value == {}:
        return None
    if not isinstance(value, Mapping):
        raise ValueError("a schedule is an object with days, after, before and timezone")
    missing = sorted(KEYS - set(value))
    unknown = sorted(set(value) - KEYS)
    if unknown:
        raise ValueError(f"unknown schedule key(s) {', '.join(unknown)}")
    if missing:
        raise ValueError(f"the schedule needs {', '.join(missing)}")
    days = value["days"]
    if not isinstance(days, str) or not days.strip():
        raise ValueError('days must be a string like "mon-fri"')
    weekdays = _weekdays(days)
    after, before = _clock(value["after"], "after"), _clock(value["before"], "before")
    if not after < before:
        raise ValueError("after must be earlier than before (windows do not cross midnight)")
    zone = value["timezone"]
    if not isinstance(zone, str) or valid_zone(zone) is None:
        raise ValueError(f"unknown time zone {zone!r} (use an IANA name like Europe/Berlin)")
    start = after.hour * 60 + after.minute
    end = before.hour * 60 + before.minute
    for offset in _offsets_minutes(zone):
        if start - offset < 0 or end - offset > 24 * 60:
            raise ValueError(
                f"{value['after']}-{value['before']} {zone} crosses midnight UTC; Pomerium's "
                "day_of_week names no zone, so the days would not mean the same everywhere"
            )
    canonical = ",".join(part.strip().lower() for part in days.split(","))
    return Schedule(canonical, weekdays, after, before, zone)


def schedule_errors(value: object) -> list[str]:
    """Readable errors of a stored schedule; [] when it is valid (or empty)."""
    try:
        parse(value)
    except ValueError as exc:
        return [str(exc)]
    return []


def as_json(schedule: Schedule) -> dict[str, str]:
    """The stored (and audited) form, canonical."""
    return {
        "days": schedule.days,
        "after": schedule.after.strftime("%H:%M"),
        "before": schedule.before.strftime("%H:%M"),
        "timezone": schedule.timezone,
    }


def criteria(schedule: Schedule) -> list[dict[str, Any]]:
    """The PPL criteria of the schedule, in this order: ``day_of_week``, ``time_of_day``."""
    return [
        {"day_of_week": schedule.days},
        {
            "time_of_day": {
                "timezone": schedule.timezone,
                "after": schedule.after.strftime("%H:%M"),
                "before": schedule.before.strftime("%H:%M"),
            }
        },
    ]


def _day_words(weekdays: frozenset[int]) -> str:
    if len(weekdays) == 7:
        return "Every day"
    if weekdays == frozenset(range(5)):
        return "Mon-Fri"
    if weekdays == frozenset({5, 6}):
        return "Sat-Sun"
    return ", ".join(_LABELS[d] for d in sorted(weekdays))


def describe(schedule: Schedule) -> str:
    """Plain words: ``Mon-Fri 09:00-17:00 (Europe/Berlin)``."""
    return (
        f"{_day_words(schedule.weekdays)} {schedule.after:%H:%M}-{schedule.before:%H:%M} "
        f"({schedule.timezone})"
    )


def describe_for(schedule: Schedule, zone: tzinfo, now: datetime) -> str:
    """Plain words plus, when the person's zone differs, the next window in their zone:
    ``Mon-Fri 09:00-17:00 (Europe/Berlin); for you (America/New_York) the next window is
    Mon 03:00-11:00``."""
    text = describe(schedule)
    name = zone_label(zone)
    if name == schedule.timezone:
        return text
    for opens, closes in windows(schedule, now, now + timedelta(days=8)):
        local_open, local_close = opens.astimezone(zone), closes.astimezone(zone)
        return (
            f"{text}; for you ({name}) the next window is {local_open:%a %H:%M}-{local_close:%H:%M}"
        )
    return text


def windows(
    schedule: Schedule, start: datetime, end: datetime, *, reverse: bool = False
) -> Iterator[tuple[datetime, datetime]]:
    """The open windows (UTC, half-open) of ``schedule`` inside ``[start, end)``, in order.

    Each day's window is the local wall-clock ``[after, before)`` of a listed weekday,
    converted with the offset that day has (DST-aware), and cut to ``[start, end)``.
    """
    zone = schedule.zone
    first: date = start.astimezone(zone).date() - timedelta(days=1)
    last: date = end.astimezone(zone).date() + timedelta(days=1)
    count = (last - first).days + 1
    order = range(count - 1, -1, -1) if reverse else range(count)
    for n in order:
        day = first + timedelta(days=n)
        if day.weekday() not in schedule.weekdays:
            continue
        opens = datetime.combine(day, schedule.after, tzinfo=zone).astimezone(UTC)
        closes = datetime.combine(day, schedule.before, tzinfo=zone).astimezone(UTC)
        opens, closes = max(opens, start), min(closes, end)
        if opens < closes:
            yield opens, closes


def state_at(
    schedule: Schedule, now: datetime, start: datetime, end: datetime
) -> tuple[bool, datetime] | None:
    """``(True, closes)`` inside a window, ``(False, opens)`` before the next one, ``None``
    when no window is left before ``end``."""
    for opens, closes in windows(schedule, max(start, now - timedelta(days=1)), end):
        if closes <= now:
            continue
        return (True, closes) if opens <= now else (False, opens)
    return None


def rfc3339(moment: datetime) -> str:
    """``2026-03-02T08:00:00Z``: a moment as the API writes it."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def last_window_end(schedule: Schedule, start: datetime, end: datetime) -> datetime | None:
    """When the last window inside ``[start, end)`` closes: access really ends then."""
    for _opens, closes in windows(schedule, start, end, reverse=True):
        return closes
    return None
