"""A grant's enforcement fields, owned here: ``sync_status``, ``sync_error``, ``live_at``,
``enforced_at`` and ``removed_at``.

The Zero sync learns what Pomerium Zero enforces and reports it through these functions,
inside the sync's own short transaction (which has already locked the grant rows). Each
change that matters is audited here, and a grant's first "live" announces
``events.GRANT_LIVE``. Nothing outside ``apps.access`` writes these fields.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

from apps.access.actions import AccessAction
from apps.audit.services import record

from .. import events
from ..models import Grant
from ..states import SyncStatus

MAX_REASON = 1000


def confirm_live(
    grant: Grant,
    *,
    at: datetime,
    policy_id: str,
    pending: bool,
    reason: str = "",
    since: datetime | None = None,
) -> int:
    """Zero holds the grant's rule: ``live`` (1) once it enforces it, ``pending_apply`` (0)
    while a changeset waits, with ``reason`` (why it waits: e.g. who else changed what in
    the changeset) in ``sync_error``. A grant already live is left alone (0), unless
    ``since`` is given (the opening of the window the worker added the rule for, on a
    target that cannot open windows by itself) and its confirmation is older: then this one
    confirms the new window (``enforced_at``), so "allowed now" never rests on an earlier
    window's rule."""
    if grant.is_live and (
        since is None or (grant.enforced_at is not None and grant.enforced_at >= since)
    ):
        return 0
    if pending:
        # The rule is written but Zero does not enforce it yet.
        Grant.objects.filter(pk=grant.pk).update(
            sync_status=SyncStatus.PENDING_APPLY, sync_error=reason[:MAX_REASON]
        )
        return 0
    first = grant.live_at is None
    Grant.objects.filter(pk=grant.pk).update(
        sync_status=SyncStatus.LIVE,
        sync_error="",
        live_at=grant.live_at or at,
        enforced_at=at,
    )
    record(
        AccessAction.GRANT_ENFORCED,
        target=grant,
        resource_slug=grant.resource.slug,
        details={
            "email": grant.email,
            **grant.window(),
            "enforced_at": at.isoformat(),
            "policy_id": policy_id,
            "first_time": first,
            **({"window_opened": since.isoformat()} if since is not None else {}),
        },
    )
    if first:
        events.emit(events.GRANT_LIVE, grant_id=grant.pk)
    return 1


def confirm_removed(
    grant: Grant, *, at: datetime, policy_id: str, pending: bool, reason: str = ""
) -> int:
    """The rule of a revoked or expired grant is gone from Zero: ``removed`` (1) once Zero
    enforces that, ``pending_apply`` (0) while a changeset waits, with ``reason``."""
    if pending:
        if grant.sync_status != SyncStatus.PENDING_APPLY or grant.sync_error != reason:
            Grant.objects.filter(pk=grant.pk).update(
                sync_status=SyncStatus.PENDING_APPLY, sync_error=reason[:MAX_REASON]
            )
        return 0
    Grant.objects.filter(pk=grant.pk).update(
        sync_status=SyncStatus.REMOVED, sync_error="", removed_at=at, enforced_at=at
    )
    record(
        AccessAction.GRANT_ENFORCED,
        target=grant,
        resource_slug=grant.resource.slug,
        details={
            "email": grant.email,
            **grant.window(),
            "state": grant.state,
            "removed": True,
            "enforced_at": at.isoformat(),
            "policy_id": policy_id,
        },
    )
    return 1


def mark_sync_error(grants: QuerySet[Grant], message: str) -> int:
    """The sync failed for these grants: ``error`` with a readable ``message`` (already
    free of secrets). Returns how many changed."""
    return grants.update(sync_status=SyncStatus.ERROR, sync_error=message)
