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
