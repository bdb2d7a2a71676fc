"""Which instants the portal can take from outside: one rule for every date a person types.

Python's datetimes run from year 1 to 9999. An instant at either end breaks as soon as it is
moved by a UTC offset or a day (``0001-01-01T00:00:00+05:00`` is in year 0 in UTC; a
database adapter, an export's file name or a date filter then fails with OverflowError).
So every bound taken from a person (the API, the export page, the reports, the admin's
date filters, a paging cursor) must lie a day inside that range: otherwise it is refused
as a field error, never a 500.
"""

from __future__ import annotations

from datetime import UTC, datetime

EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, tzinfo=UTC)
OUT_OF_RANGE = "is outside the dates the portal can use (0001-01-02 to 9999-12-30 UTC)"


def usable(value: datetime) -> bool:
    """Whether ``value`` (aware, or naive as in any zone) is a day inside Python's range."""
    if value.tzinfo is None or value.utcoffset() is None:
        # Naive: it becomes aware in some zone, at most a day away from UTC.
        return EARLIEST.replace(tzinfo=None) <= value <= LATEST.replace(tzinfo=None)
    try:
        return EARLIEST <= value <= LATEST
    except OverflowError:  # comparing converts to UTC, which may itself overflow
        return False
