"""The per-resource lease that serialises syncs: claim, renew, release.

A lease on the resource's ``PolicySync`` row, claimed with a conditional UPDATE (rows
changed = 0 -> another sync holds it), is held across the HTTP calls of a pass instead of a
database transaction, and released at the end, also on error. A crashed holder's lease
lapses after ``LEASE_SECONDS``.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from apps.pomerium.models import PolicySync

__all__ = ["LEASE_SECONDS", "claim", "new_owner", "release", "renew"]

LEASE_SECONDS = 120


def new_owner() -> str:
    """A name for this holder, unique across hosts, processes, threads and calls."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}:{uuid.uuid4().hex[:8]}"


def claim(state_pk: int, owner: str) -> bool:
    """Take the lease when nobody holds it (or a holder's lapsed); False when one does."""
    now = timezone.now()
    claimed = (
        PolicySync.objects.filter(pk=state_pk)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(
            lease_owner=owner,
            lease_until=now + timedelta(seconds=LEASE_SECONDS),
            last_attempt_at=now,
        )
    )
    return claimed == 1


def renew(state_pk: int, owner: str) -> None:
    """Push the lease's end ``LEASE_SECONDS`` ahead, if ``owner`` still holds it."""
    PolicySync.objects.filter(pk=state_pk, lease_owner=owner).update(
        lease_until=timezone.now() + timedelta(seconds=LEASE_SECONDS)
    )


def release(state_pk: int, owner: str) -> None:
    """Let go of the lease, if ``owner`` still holds it."""
    PolicySync.objects.filter(pk=state_pk, lease_owner=owner).update(
        lease_owner="", lease_until=None
    )
