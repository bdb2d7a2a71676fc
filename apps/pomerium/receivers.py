"""What the Zero sync does when the access domain announces a change (``apps.access.events``).

Connected in ``PomeriumConfig.ready()``.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings

log = logging.getLogger(__name__)


def enqueue_sync(sender: Any, *, resource_id: int, **_: Any) -> None:
    """``policy_changed``: enqueue the resource's sync. If the broker is down, nothing is
    lost: the resource's generation stays ahead of what was synced and ``zero.tick``
    catches up within 30 s."""
    if not settings.ZERO_SYNC_ENABLED:
        return
    from apps.pomerium.tasks import sync_resource

    try:
        sync_resource.delay(resource_id=resource_id)
    except Exception:
        log.exception("could not enqueue the Zero sync of resource %s", resource_id)
