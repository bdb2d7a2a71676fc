"""The seam between a state change and the Zero sync.

``request_sync`` marks the resource's desired policy as changed (a generation counter, in
the caller's transaction) and enqueues the sync after commit. The counter is what makes
"nothing lost" hold: if the broker is down at that moment, the periodic reconcile still
sees ``sync_generation`` ahead of what was last synced and catches up. It is also what
coalesces bursts: one sync that read generation N settles every change up to N.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.db.models import F

if TYPE_CHECKING:
    from .models import Resource

log = logging.getLogger(__name__)


def request_sync(resource: Resource) -> None:
    from .models import Resource

    Resource.objects.filter(pk=resource.pk).update(sync_generation=F("sync_generation") + 1)
    resource_id = resource.pk
    transaction.on_commit(lambda: enqueue_sync(resource_id))


def enqueue_sync(resource_id: int) -> None:
    if not settings.ZERO_SYNC_ENABLED:
        return
    try:
        from apps.zero.tasks import sync_resource

        sync_resource.delay(resource_id=resource_id)
    except Exception:  # the broker is down: the periodic reconcile picks the change up
        log.exception("could not enqueue the Zero sync of resource %s", resource_id)
