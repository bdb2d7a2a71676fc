"""What notifications does when the access domain announces an event
(``apps.access.events.domain_event``). Connected in ``NotificationsConfig.ready()``.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def on_domain_event(sender: Any, *, event: str, ids: dict[str, Any], **_: Any) -> None:
    """Enqueue the planning and sending of the event's notices.

    If the broker is down, the notices are planned and stored right here instead; their
    sending is retried by ``notifications.tick`` once the broker is back. The decision that
    raised the event stands whatever happens here.
    """
    from . import services
    from .tasks import notify

    try:
        notify.delay(event=event, **ids)
        return
    except Exception:
        log.exception("could not enqueue notification %s %s; storing it here", event, ids)
    try:
        services.dispatch(event, **ids)
    except Exception:
        log.exception("could not store notification %s %s", event, ids)


def on_compliance_event(sender: Any, *, event: str, **facts: Any) -> None:
    """An access review's event (``apps.reviews.events.review_event``): plan and store its
    notices through a task, or right here when the broker is down."""
    _compliance(event, facts)


def on_stream_alert(sender: Any, *, destination: str, error: str, refused: bool, **_: Any) -> None:
    """The audit stream's alert (``apps.audit.stream.signals.stream_alert``): tell the
    superusers, once per alert."""
    from django.utils import timezone

    facts = {
        "destination": destination,
        "error": error,
        "refused": refused,
        "at": timezone.now().isoformat(),
    }
    _compliance("audit_stream_alert", facts)


def _compliance(event: str, facts: dict[str, Any]) -> None:
    from . import compliance, services
    from .tasks import notify_compliance

    try:
        notify_compliance.delay(event=event, **facts)
        return
    except Exception:
        log.exception("could not enqueue notification %s %s; storing it here", event, facts)
    try:
        services.store(compliance.plan(event, **facts))
    except Exception:
        log.exception("could not store notification %s %s", event, facts)
