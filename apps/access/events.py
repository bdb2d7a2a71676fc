"""The access domain's events: what happened, announced after commit to whoever listens.

The domain does not know its listeners. The Zero and notification apps connect
to these signals in their ``AppConfig.ready()``; access imports neither (the layers are
checked by ``lint-imports``).

* ``domain_event(event=..., ids={...})``: a request or grant changed in a way people are
  told about. ``event`` is one of the names below, ``ids`` holds ``request_id`` and/or
  ``grant_id``. Services call ``emit`` inside their transaction; the signal is sent only
  once it commits, so a listener never sees a change that was rolled back.
* ``policy_changed(resource_id=...)``: a resource's desired Zero policy changed (see
  ``apps.access.sync.request_sync``), sent after commit.

Signals are sent with ``send_robust``: a listener that fails (the broker is down, say) is
logged and never undoes the decision; each listener owns its own fallback.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.dispatch import Signal

log = logging.getLogger(__name__)

REQUEST_SUBMITTED = "request_submitted"
REQUEST_DECIDED = "request_decided"
GRANT_REVOKED = "grant_revoked"
# Pomerium confirmed a grant's rule for the first time. That is not "the person may get in
# now": a scheduled grant, or one between its recurring windows, opens later. What they can
# do at any moment is ``reach.access``; listeners that tell people use that.
GRANT_LIVE = "grant_live"
BREAK_GLASS = "break_glass"
# A break-glass activation refused while earlier ones await review (``grant_id``: the latest
# of those, ``attempt``: when it was refused).
BREAK_GLASS_REFUSED = "break_glass_refused"
EXPIRY_REMINDER = "expiry_reminder"
REQUEST_WAITING = "request_waiting"
# Emitted by the Zero sync: a revocation Zero has not confirmed within the alert threshold.
REMOVAL_OVERDUE = "removal_overdue"
# Changes nobody is mailed about but a request's Slack message shows (quorum so far, the end).
APPROVAL_RECORDED = "approval_recorded"
REQUEST_CANCELLED = "request_cancelled"
REQUEST_EXPIRED = "request_expired"
GRANT_EXPIRED = "grant_expired"

domain_event = Signal()
policy_changed = Signal()


def emit(event: str, **ids: Any) -> None:
    """Announce ``event`` about ``ids`` once the current transaction commits."""
    transaction.on_commit(lambda: send(domain_event, event=event, ids=ids))


def send(signal: Signal, **facts: Any) -> None:
    """Send now, logging (never raising) what a listener fails with."""
    for receiver, result in signal.send_robust(sender=None, **facts):
        if isinstance(result, Exception):
            log.error(
                "listener %s failed on %s",
                getattr(receiver, "__qualname__", receiver),
                facts,
                exc_info=result,
            )
