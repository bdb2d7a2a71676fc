"""Choosing what to sync: the resources the reconcile and the tick pass to
``sync_resource``, a resource's next window boundary, and the overdue-removal alerts.

Reads only (but for ``flag_overdue_removals``, which records its alerts): the choice is a
query over ``Resource``, ``Grant`` and the sync's own ``PolicySync`` rows.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import F, Q
from django.utils import timezone

from apps.access import events
from apps.access.models import Grant, Resource
from apps.access.states import SyncStatus
from apps.audit import services as audit
from apps.audit.services import record
from apps.pomerium import remote
from apps.pomerium.actions import ZeroAction
from apps.pomerium.models import PolicySync, RemovalAlert
from apps.pomerium.outcomes import CLOSED_GRANT_STATES

__all__ = ["due_at", "flag_overdue_removals", "resources_to_reconcile", "resources_to_tick"]


# --------------------------------------------------------------------------- #
# Reconcile
# --------------------------------------------------------------------------- #


def _unsettled() -> Q:
    """A resource whose change Zero has not settled yet: waiting for a changeset, confirmed
    only by a settings read (re-checked until the activity log proves it), its generation
    ahead of what was synced (e.g. the broker was down at commit), or never synced at all."""
    return (
        Q(zero__pending_apply=True)
        | Q(zero__confirmed_by=remote.CONFIRMED_BY_SETTINGS)
        | Q(sync_generation__gt=F("zero__synced_generation"))
        | Q(zero__isnull=True, sync_generation__gt=0)
        | (Q(zero__isnull=False) & ~Q(zero__retired_policies=[]))
    )


def _resource_ids(condition: Q) -> list[int]:
    return list(
        Resource.objects.filter(condition).order_by("pk").values_list("pk", flat=True).distinct()
    )


def resources_to_reconcile() -> list[int]:
    """Ids of resources the periodic reconcile syncs: active ones, plus archived ones
    whose grants are not all confirmed removed or whose policy is not settled."""
    unsettled = Grant.objects.exclude(sync_status=SyncStatus.REMOVED).values("resource_id")
    return _resource_ids(
        Q(is_active=True) | Q(pk__in=unsettled) | Q(zero__consecutive_failures__gt=0) | _unsettled()
    )


# --------------------------------------------------------------------------- #
# Tick: what Zero has not confirmed yet
# --------------------------------------------------------------------------- #


def resources_to_tick(now: datetime | None = None) -> list[int]:
    """Ids of resources the 30-second tick syncs: those with a revoked or expired grant
    whose removal Zero has not confirmed, a change Zero has not settled yet, or a window
    boundary the worker must enforce that is past (``due_at``: the fallback when the pass
    queued for that second was lost, or the worker was down)."""
    now = now or timezone.now()
    unremoved = Grant.objects.filter(state__in=CLOSED_GRANT_STATES).exclude(
        sync_status=SyncStatus.REMOVED
    )
    return _resource_ids(
        Q(pk__in=unremoved.values("resource_id")) | _unsettled() | Q(zero__due_at__lte=now)
    )


def due_at(resource_id: int) -> datetime | None:
    """The next window boundary recorded for the resource (``PolicySync.due_at``)."""
    return (
        PolicySync.objects.filter(resource_id=resource_id).values_list("due_at", flat=True).first()
    )


def flag_overdue_removals(now: datetime | None = None) -> int:
    """Raise one alert per overdue revocation: an audit entry and a notice to the
    resource's approvers (``events.REMOVAL_OVERDUE``). Returns how many were raised.

    On a target that cannot close a rule by itself an expiry is a removal too: a grant
    whose end passed ``ZERO_REMOVAL_ALERT_SECONDS`` ago without a confirmed removal is
    alerted the same way (``revoked_at`` is then its end, with ``expired: true``)."""
    now = now or timezone.now()
    raised = 0
    for grant in (
        Grant.objects.removal_overdue(now)
        .exclude(pk__in=RemovalAlert.objects.values("grant_id"))
        .select_related("resource")
    ):
        # Revoked, or (on a target that cannot close a rule by itself) ended by the clock.
        revoked_at = grant.revoked_at or grant.expires_at
        with audit.atomic():
            _, created = RemovalAlert.objects.get_or_create(
                grant=grant, defaults={"raised_at": now, "revoked_at": revoked_at}
            )
            if not created:
                continue  # another tick got there first
            record(
                ZeroAction.ZERO_REMOVAL_OVERDUE,
                target=grant,
                resource_slug=grant.resource.slug,
                details={
                    "email": grant.email,
                    "revoked_at": revoked_at.isoformat(),
                    "seconds_since_revocation": int((now - revoked_at).total_seconds()),
                    **({} if grant.revoked_at else {"expired": True}),
                    "sync_status": grant.sync_status,
                    "sync_error": grant.sync_error[:300] or None,
                },
            )
            events.emit(events.REMOVAL_OVERDUE, grant_id=grant.pk)
            raised += 1
    return raised
