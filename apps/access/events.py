"""Domain events that trigger notifications, dispatched after commit.

Services call ``emit`` inside their transaction; the notification task is enqueued only
once the transaction commits, and a failure to enqueue never undoes a decision.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

log = logging.getLogger(__name__)

REQUEST_SUBMITTED = "request_submitted"
REQUEST_DECIDED = "request_decided"
GRANT_REVOKED = "grant_revoked"
GRANT_LIVE = "grant_live"
BREAK_GLASS = "break_glass"
EXPIRY_REMINDER = "expiry_reminder"
REQUEST_WAITING = "request_waiting"
# Emitted by the Zero sync: a revocation Zero has not confirmed within the alert threshold.
REMOVAL_OVERDUE = "removal_overdue"


def emit(event: str, **ids: Any) -> None:
    transaction.on_commit(lambda: _dispatch(event, ids))


def _dispatch(event: str, ids: dict[str, Any]) -> None:
    try:
        from .tasks import notify

        notify.delay(event=event, **ids)
        return
    except Exception:
        log.exception("could not enqueue notification %s %s; storing it here", event, ids)
    # The broker is down: store the notices in this process instead. Their sending is
    # retried by the notifications tick once the broker is back. The decision stands
    # whatever happens here.
    try:
        from . import notifications

        notifications.dispatch(event, **ids)
    except Exception:
        log.exception("could not store notification %s %s", event, ids)
