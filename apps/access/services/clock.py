"""Time passing: requests expire, scheduled grants start, finished grants end."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import models
from django.utils import timezone

from apps.access.actions import AccessAction
from apps.audit import services as audit
from apps.audit.services import record

from .. import events
from ..models import AccessRequest, Grant, Resource
from ..states import (
    GrantState,
    RequestState,
    transition,
)
from ..sync import request_sync

if TYPE_CHECKING:
    from apps.accounts.models import User


_BATCH = 500


def _move_due(
    due: models.QuerySet[Any], still_due: models.QuerySet[Any], move: Callable[[Any], None]
) -> int:
    """Claim each row of ``due`` under its lock, re-check it against ``still_due``, move it.

    One small transaction per row; ``skip_locked`` leaves a row another runner holds to it,
    and the re-check makes a second runner that comes later find nothing to do.
    """
    moved = 0
    for pk in list(due.values_list("pk", flat=True)[:_BATCH]):
        with audit.atomic():
            row = still_due.select_for_update(skip_locked=True).filter(pk=pk).first()
            if row is not None:
                move(row)
                moved += 1
    return moved


def _expire_request(req: AccessRequest, *, actor: User | None = None) -> None:
    """Expire a locked pending request: it waited too long, or its resource was archived."""
    transition(req, RequestState, RequestState.EXPIRED)
    req.save(update_fields=["state"])
    details = {"requester": req.requester.email, "waited_until": req.expires_at.isoformat()}
    if not req.resource.is_active:
        details["reason"] = "resource archived"
    record(
        AccessAction.REQUEST_EXPIRED,
        actor=actor,
        target=req,
        resource_slug=req.resource.slug,
        details=details,
    )
    events.emit(events.REQUEST_EXPIRED, request_id=req.pk)


def expire_requests_of_archived(resource: Resource, *, actor: User | None) -> int:
    """An archived resource's open requests expire (inside the archiving transaction, after
    the resource row is locked; each audited ``request.expired``, reason "resource archived").

    A request someone is deciding at this very moment is skipped, never waited for (the
    decision then finds the resource archived and is refused); ``expire_due`` expires it at
    its next run, like any pending request of an archived resource. Returns how many expired.
    """
    pending = (
        AccessRequest.objects.pending()
        .filter(resource=resource)
        .select_for_update(of=("self",), skip_locked=True)
        .select_related("requester")
        .order_by("pk")
    )
    expired = 0
    for req in pending:
        req.resource = resource
        _expire_request(req, actor=actor)
        expired += 1
    return expired


def _activate_grant(grant: Grant) -> None:
    transition(grant, GrantState, GrantState.ACTIVE)
    grant.save(update_fields=["state"])
    record(
        AccessAction.GRANT_ACTIVATED,
        target=grant,
        resource_slug=grant.resource.slug,
        details={"email": grant.email, **grant.window()},
    )


def _expire_grant(grant: Grant) -> None:
    transition(grant, GrantState, GrantState.EXPIRED)
    grant.save(update_fields=["state"])
    # The PPL's date.before already ended access; the sync only tidies the policy.
    request_sync(grant.resource)
    record(
        AccessAction.GRANT_EXPIRED,
        target=grant,
        resource_slug=grant.resource.slug,
        details={"email": grant.email, **grant.window()},
    )
    events.emit(events.GRANT_EXPIRED, grant_id=grant.pk)


def expire_due(now: datetime | None = None) -> dict[str, int]:
    """Apply the clock: expire stale requests, start scheduled grants, end finished ones.

    Idempotent and safe to run concurrently: each row is claimed under its lock and only
    moved if it is still due. Returns how many rows moved, by kind. Actor: system.
    """
    now = now or timezone.now()
    requests = AccessRequest.objects.select_related("resource", "requester")
    grants = Grant.objects.select_related("resource")
    return {
        "requests_expired": _move_due(
            AccessRequest.objects.due_for_expiry(now),
            requests.due_for_expiry(now),
            _expire_request,
        ),
        "grants_activated": _move_due(
            Grant.objects.due_for_activation(now), grants.due_for_activation(now), _activate_grant
        ),
        "grants_expired": _move_due(
            Grant.objects.due_for_expiry(now), grants.due_for_expiry(now), _expire_grant
        ),
    }
