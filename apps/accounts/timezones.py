"""Time zones: the ones a person may choose, and the zone every page and message shows a
person's times in. The one home of these helpers; pages, the admin and notifications use it."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, tzinfo
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
