"""The time zones a person may choose for showing times (their preference)."""

from __future__ import annotations

import zoneinfo
from datetime import tzinfo
from functools import lru_cache


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
