"""Time zones: the ones a person may choose, and the zone every page and message shows a
person's times in. The one home of these helpers; pages, the admin and notifications use it."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.http import HttpRequest

# Set by a tiny script from Intl.DateTimeFormat when the person has no zone preference.
TZ_COOKIE = "jitportal_tz"


@lru_cache(maxsize=1)
def zone_names() -> tuple[str, ...]:
    # available_timezones() walks the tz database on disk; once per process is plenty.
    return tuple(sorted(zoneinfo.available_timezones()))


def valid_zone(name: str | None) -> tzinfo | None:
    if not name or len(name) > 64 or name not in zone_names():
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def zone_of(user: Any) -> tzinfo:
    """The zone a person's own messages show times in: their preference, else UTC."""
    return valid_zone(getattr(user, "time_zone", "")) or UTC


def zone_for(request: HttpRequest) -> tzinfo:
    """The zone a page shows times in: the preference, then the browser's (cookie), then UTC."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        preferred = valid_zone(getattr(user, "time_zone", ""))
        if preferred is not None:
            return preferred
    return valid_zone(request.COOKIES.get(TZ_COOKIE, "")) or UTC


def zone_label(zone: tzinfo) -> str:
    return getattr(zone, "key", None) or "UTC"


# --- Writing a moment for a person ----------------------------------------------------------
#
# Every time a person reads carries its zone: the abbreviation the zone database gives
# ("CET", "CEST", "EST", "UTC"), or the offset where the zone has none ("+03").


def abbreviation(local: datetime) -> str:
    """The zone of an aware local time as people read it: ``CET``, ``UTC`` or ``+03``."""
    name = local.tzname() or ""
    if name:
        return name
    offset = local.utcoffset()
    if offset is None:  # pragma: no cover - aware datetimes always have one
        return "UTC"
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}" + (f":{rest:02d}" if rest else "")


def stamp(moment: datetime, zone: tzinfo) -> str:
    """A moment in full, with its zone: ``Mon 3 Mar 2025 14:02 CET``."""
    local = moment.astimezone(zone)
    return (
        f"{WEEKDAYS[local.weekday()]} {local.day} {MONTHS[local.month - 1]} {local.year} "
        f"{local:%H:%M} {abbreviation(local)}"
    )


def when(moment: datetime, zone: tzinfo, now: datetime) -> str:
    """A moment as short as it stays unambiguous next to ``now``, with its zone:
    ``17:00 CET`` (the same day), ``Mon 09:00 CET`` (within six days), else
    ``Mon 3 Mar 09:00 CET`` (another year adds the year)."""
    local, today = moment.astimezone(zone), now.astimezone(zone)
    clock = f"{local:%H:%M} {abbreviation(local)}"
    days = (local.date() - today.date()).days
    if days == 0:
        return clock
    weekday = WEEKDAYS[local.weekday()]
    if 0 < days <= 6:
        return f"{weekday} {clock}"
    year = f" {local.year}" if local.year != today.year else ""
    return f"{weekday} {local.day} {MONTHS[local.month - 1]}{year} {clock}"


WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
