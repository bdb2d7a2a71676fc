"""What the stream announces; the audit app does not know who listens.

``stream_alert(destination=..., error=..., refused=...)`` is sent once per failure episode,
after the commit that recorded it (``audit.stream_refused`` in the trail): a destination
refused a batch (bad token, too large, a wrong URL), or has been unreachable longer than
``AUDIT_STREAM_ALERT_AFTER_SECONDS``. The notifications app connects to it and tells the
superusers. Sent with ``send_robust``: a failing listener is logged, never raised.
"""

from __future__ import annotations

import logging

from django.dispatch import Signal

log = logging.getLogger(__name__)

stream_alert = Signal()


def send_alert(*, destination: str, error: str, refused: bool) -> None:
    for receiver, result in stream_alert.send_robust(
        sender=None, destination=destination, error=error, refused=refused
    ):
        if isinstance(result, Exception):
            log.error("audit stream alert listener %s failed", receiver, exc_info=result)
