"""What access reviews announce, after commit; the notifications app listens.

``review_event(event=..., campaign_id=...)`` with ``event`` one of:

* ``review_opened``: a campaign opened; its reviewers are told what waits for them;
* ``review_reminder``: its due date is near and items are still open (once);
* ``review_overdue``: its due date passed with items open: the owner and the reviewers
  still holding items are told (once).
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.dispatch import Signal

log = logging.getLogger(__name__)

REVIEW_OPENED = "review_opened"
REVIEW_REMINDER = "review_reminder"
REVIEW_OVERDUE = "review_overdue"

review_event = Signal()


def emit(event: str, **ids: Any) -> None:
    """Announce ``event`` once the current transaction commits."""
    transaction.on_commit(lambda: send(event, **ids))


def send(event: str, **ids: Any) -> None:
    for receiver, result in review_event.send_robust(sender=None, event=event, **ids):
        if isinstance(result, Exception):
            log.error("listener %s failed on %s %s", receiver, event, ids, exc_info=result)
