"""The reminder stamps on requests and grants, owned here.

Notifications decides *that* a reminder is due and what it says; claiming it (so two
ticks never remind twice) writes access's own fields, so it happens here. Each claim is a
conditional UPDATE: True means this caller won the reminder, False that it was already
sent, the request was decided, or the grant changed (an extension earns a new reminder,
because the claim matches the end it was computed for).
"""

from __future__ import annotations

from datetime import datetime

from ..models import AccessRequest, Grant
from ..states import OPEN_GRANT_STATES, RequestState


def claim_expiry_reminder(grant_id: int, *, ends: datetime, now: datetime) -> bool:
    """Stamp ``reminder_sent_at`` on an open grant that still ends at ``ends``."""
    return bool(
        Grant.objects.filter(
            pk=grant_id, reminder_sent_at__isnull=True, expires_at=ends, state__in=OPEN_GRANT_STATES
        ).update(reminder_sent_at=now)
    )


def claim_waiting_reminder(request_id: int, *, now: datetime) -> bool:
    """Stamp ``reminded_at`` on a request that is still pending."""
    return bool(
        AccessRequest.objects.filter(
            pk=request_id, state=RequestState.PENDING, reminded_at__isnull=True
        ).update(reminded_at=now)
    )
