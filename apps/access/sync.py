"""The seam between a state change and the Zero sync.

``request_sync`` marks the resource's desired policy as changed (a generation counter, in
the caller's transaction) and announces it after commit; the Zero app listens and enqueues
the sync. The counter is what makes "nothing lost" hold: if the broker is down at that
moment, the 30-second tick still sees ``sync_generation`` ahead of what was last synced
and catches up. It is also what
coalesces bursts: one sync that read generation N settles every change up to N.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import transaction
from django.db.models import F

from . import events

if TYPE_CHECKING:
    from .models import Resource


def request_sync(resource: Resource) -> None:
    """Bump the resource's generation in the caller's transaction; after commit, announce
    ``events.policy_changed`` (the Zero sync listens)."""
    from .models import Resource

    Resource.objects.filter(pk=resource.pk).update(sync_generation=F("sync_generation") + 1)
    resource_id = resource.pk
    transaction.on_commit(lambda: events.send(events.policy_changed, resource_id=resource_id))
