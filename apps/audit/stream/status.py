"""Where each destination stands: cursor, lag, last success, last error.

The one source of the admin page and ``manage.py stream_audit --status``. Lag is counted in
entries (the chain's head minus the cursor) and in seconds (how old the oldest entry not
yet acknowledged is: how far behind the SIEM's view of the world is).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from ..models import AuditEvent, StreamDestination
from . import config
from .sender import head_seq

CURRENT = "current"
BEHIND = "sending"
RETRYING = "retrying (outage)"
REFUSED = "REFUSED"
NOT_CONFIGURED = "not configured"


@dataclass(frozen=True)
class DestinationStatus:
    name: str
    configured: bool
    cursor: int
    head: int
    lag_entries: int
    lag_seconds: float
    last_success_at: datetime | None
    last_error: str
    last_error_at: datetime | None
    next_attempt_at: datetime | None
    failures: int
    refused: bool

    @property
    def state(self) -> str:
        if not self.configured:
            return NOT_CONFIGURED
        if self.refused:
            return REFUSED
        if self.failures:
            return RETRYING
        return CURRENT if self.lag_entries == 0 else BEHIND

    @property
    def healthy(self) -> bool:
        return self.state in (CURRENT, BEHIND)


def _oldest_unsent_at(cursor: int) -> datetime | None:
    return AuditEvent.objects.filter(seq=cursor + 1).values_list("created_at", flat=True).first()


def of(row: StreamDestination, *, head: int, now: datetime, configured: bool) -> DestinationStatus:
    lag = max(0, head - row.cursor)
    oldest = _oldest_unsent_at(row.cursor) if lag else None
    return DestinationStatus(
        name=row.name,
        configured=configured,
        cursor=row.cursor,
        head=head,
        lag_entries=lag,
        lag_seconds=max(0.0, (now - oldest).total_seconds()) if oldest else 0.0,
        last_success_at=row.last_success_at,
        last_error=row.last_error,
        last_error_at=row.last_error_at,
        next_attempt_at=row.next_attempt_at,
        failures=row.failures,
        refused=row.refused,
    )


def statuses(now: datetime | None = None) -> list[DestinationStatus]:
    """Every configured destination (its row made if new), then rows no longer configured."""
    now = now or timezone.now()
    names = [d.name for d in config.destinations()]
    for name in names:
        StreamDestination.objects.get_or_create(name=name)
    top = head_seq()
    by_name = {row.name: row for row in StreamDestination.objects.all()}
    ordered = [by_name[n] for n in names] + sorted(
        (r for n, r in by_name.items() if n not in names), key=lambda r: r.name
    )
    return [of(row, head=top, now=now, configured=row.name in names) for row in ordered]
