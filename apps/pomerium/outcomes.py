"""Recording what a sync pass did: the row, each grant, the audit trail, in one transaction.

Called by ``apps.pomerium.sync`` after its remote calls, never while it waits on Zero. The
sync's own row (``PolicySync``) is written here; each grant's enforcement fields are
reported to their owner, ``apps.access.services.enforcement``, which audits them. Lock
order matches the services (rows first, then the audit chain through ``record``):
the ``PolicySync`` row, then the grants, then the audit entries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import F, Q
from django.db.models.functions import Greatest
from django.utils import timezone

from apps.access import targets
from apps.access.models import Grant, Resource
from apps.access.services import enforcement
from apps.access.states import OPEN_GRANT_STATES, GrantState, SyncStatus
from apps.audit import services as audit
from apps.audit.services import record
from apps.pomerium import windows
from apps.pomerium.desired import RuleKey, grant_key
from apps.pomerium.models import PolicySync

from .actions import ZeroAction

CLOSED_GRANT_STATES = (GrantState.REVOKED, GrantState.EXPIRED)
MAX_ERROR = 1000


@dataclass
class PassResult:
    """What the remote phase of a pass found and did (filled in as it goes)."""

    generation: int
    wanted: dict[int, RuleKey]
    policy_id: str = ""
    created: bool = False
    wrote: bool = False
    drift: bool = False
    remote_digest: str = ""
    has_unsettled: bool = False
    confirmed_at: datetime | None = None
    confirmed_by: str = ""  # what proved it: "activity", "changeset" or "settings"
    routes: list[dict[str, Any]] | None = None
    pending_apply: bool = False  # written, not yet enforced (see remote.settle_changesets)
    pending_reason: str = ""
    applying: bool = False  # we applied a changeset and Zero is still applying it
    pending_changesets: list[str] = field(default_factory=list)
    applied_changesets: list[str] = field(default_factory=list)
    duplicate_policy_ids: list[str] | None = None  # None: not looked at in this pass
    cluster_id: str = ""  # the Zero cluster this pass wrote to
    retired: list[dict[str, str]] | None = None  # None: the row's list is unchanged
    # The answered write of this pass the portal may learn its own Zero user from:
    # ("create", None) or ("update", digest read before the replace); None: none.
    learnable: tuple[str, str | None] | None = None
    # Grants whose rule was left out of the policy because the target refuses it -> why.
    refused: dict[int, str] = field(default_factory=dict)
    held_rules: set[str] | None = None  # the grant/base rules Zero held before this pass
    audits: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    # The instant the pass computed its windows for (its ``now``), and the next one at
    # which a grant's rule must appear or disappear (``windows.next_boundary``).
    now: datetime | None = None
    due_at: datetime | None = None

    def audit(self, action: str, details: dict[str, Any]) -> None:
        """Queue an entry about the policy; written with the pass's outcome."""
        self.audits.append((action, details))


def _removable(resource: Resource, wanted: dict[int, RuleKey]) -> Q:
    """Grants whose rule must be gone and is not yet confirmed gone."""
    return (
        Q(resource=resource, state__in=CLOSED_GRANT_STATES)
        & ~Q(sync_status=SyncStatus.REMOVED)
        & ~Q(pk__in=list(wanted))
    )


def has_unsettled(resource: Resource, wanted: dict[int, RuleKey]) -> bool:
    """Does any grant wait for a confirmation (live or removed) from this pass?"""
    waiting_live = (
        Grant.objects.filter(pk__in=list(wanted)).exclude(sync_status=SyncStatus.LIVE).exists()
    )
    return waiting_live or Grant.objects.filter(_removable(resource, wanted)).exists()


def _write_audits(resource: Resource, result: PassResult) -> None:
    for action, details in result.audits:
        record(action, target=resource, resource_slug=resource.slug, details=details)


def _mark_refused(resource: Resource, result: PassResult) -> int:
    """Grants whose rule the target refuses: ``error`` with the reason, audited once per
    reason (``zero.grant_rule_refused``), and never counted live. Returns how many changed."""
    changed = 0
    grants = (
        Grant.objects.select_for_update(of=("self",))
        .filter(pk__in=list(result.refused), state__in=OPEN_GRANT_STATES)
        .order_by("pk")
    )
    for grant in grants:
        reason = f"the rule was left out of the policy: {result.refused[grant.pk]}"[:MAX_ERROR]
        if grant.sync_status == SyncStatus.ERROR and grant.sync_error == reason:
            continue
        changed += enforcement.mark_sync_error(Grant.objects.filter(pk=grant.pk), reason)
        record(
            ZeroAction.GRANT_RULE_REFUSED,
            target=grant,
            resource_slug=resource.slug,
            details={
                "email": grant.email,
                "criteria": grant.criteria,
                "reason": reason,
                "policy_id": result.policy_id or None,
                "generation": result.generation,
            },
        )
    return changed


def record_success(
    state_pk: int, owner: str, resource: Resource, result: PassResult
) -> tuple[int, int]:
    """Settle the row and the grants after a successful pass; returns (live, removed).

    Grants in the written policy become ``live`` (``pending_apply`` while a changeset
    waits), closed grants no longer in it ``removed``; each such change is audited as
    ``grant.enforced`` with the time Zero's confirmation arrived, and a grant's first
    ``live`` emits ``events.GRANT_LIVE``. A grant changed since the pass read it
    (another window, a revocation) is left for the pass its change triggered.
    ``synced_generation`` only ever grows. If the lease was lost meanwhile (an overlong
    pass), only the queued audit entries are written: another pass owns the outcome.
    """
    now = timezone.now()
    enforced_at = result.confirmed_at or now
    # No grant becomes live or removed without Zero's confirmation of this pass.
    unconfirmed = result.pending_apply or result.confirmed_at is None
    # Why the grants wait, shown on each grant (who else changed what, for instance).
    waiting = result.pending_reason if result.pending_apply else ""
    live = removed = 0
    with audit.atomic():
        state = PolicySync.objects.select_for_update().get(pk=state_pk)
        if state.lease_owner != owner:
            _write_audits(resource, result)
            return 0, 0
        grants = list(
            Grant.objects.select_for_update(of=("self",))  # the grants, not their resource
            .select_related("resource", "level")
            .filter(Q(pk__in=list(result.wanted)) | _removable(resource, result.wanted))
            .order_by("pk")
        )
        PolicySync.objects.filter(pk=state_pk).update(
            synced_generation=Greatest(F("synced_generation"), result.generation),
            remote_policy_id=result.policy_id,
            cluster_id=result.cluster_id or state.cluster_id,
            retired_policies=(
                result.retired if result.retired is not None else state.retired_policies
            ),
            remote_digest=result.remote_digest,
            last_success_at=now,
            last_error="",
            consecutive_failures=0,
            pending_apply=result.pending_apply,
            confirmed_by=(
                result.confirmed_by
                if result.confirmed_at is not None
                else ("" if result.pending_apply else state.confirmed_by)
            ),
            pending_changeset_ids=result.pending_changesets,
            pending_reason=result.pending_reason if result.pending_apply else "",
            due_at=result.due_at,
            routes=result.routes if result.routes is not None else state.routes,
            duplicate_policy_ids=(
                result.duplicate_policy_ids
                if result.duplicate_policy_ids is not None
                else state.duplicate_policy_ids
            ),
        )
        _write_audits(resource, result)
        _mark_refused(resource, result)
        caps = targets.capabilities(resource.cluster)
        worker_windows = windows.needs_worker(caps)
        at = result.now or now
        for grant in grants:
            current = grant_key(grant, at, caps) if grant.state in OPEN_GRANT_STATES else None
            in_policy = current is not None and result.wanted.get(grant.pk) == current
            if in_policy:
                window = windows.grant_window(grant, at, caps) if worker_windows else None
                live += enforcement.confirm_live(
                    grant,
                    at=enforced_at,
                    policy_id=result.policy_id,
                    pending=unconfirmed,
                    reason=waiting,
                    # The worker added the rule for this window: confirm it for this one.
                    since=window.opens if window is not None else None,
                )
            elif grant.pk not in result.wanted and grant.state in CLOSED_GRANT_STATES:
                removed += enforcement.confirm_removed(
                    grant,
                    at=enforced_at,
                    policy_id=result.policy_id,
                    pending=unconfirmed,
                    reason=waiting,
                )
    return live, removed


def record_failure(
    state_pk: int, resource: Resource, result: PassResult, message: str, *, transient: bool
) -> None:
    """Record a failed pass: unsettled grants -> ``error`` with ``message``, the row's
    ``last_error``, audit entries for remote changes that did happen, and
    ``zero.sync_failed`` on the first failure of a streak only (retries stay quiet)."""
    message = message[:MAX_ERROR]
    now = timezone.now()
    with audit.atomic():
        state = PolicySync.objects.select_for_update().get(pk=state_pk)
        first = state.consecutive_failures == 0
        unsettled = (
            Q(pk__in=list(result.wanted))
            & ~Q(sync_status=SyncStatus.LIVE)
            & Q(state__in=OPEN_GRANT_STATES)
        ) | _removable(resource, result.wanted)
        _mark_refused(resource, result)
        errored = enforcement.mark_sync_error(Grant.objects.filter(unsettled), message)
        PolicySync.objects.filter(pk=state_pk).update(
            last_error=message,
            last_error_at=now,
            consecutive_failures=F("consecutive_failures") + 1,
            duplicate_policy_ids=(
                result.duplicate_policy_ids
                if result.duplicate_policy_ids is not None
                else state.duplicate_policy_ids
            ),
        )
        _write_audits(resource, result)
        if first:
            record(
                ZeroAction.ZERO_SYNC_FAILED,
                target=resource,
                resource_slug=resource.slug,
                details={
                    "error": message,
                    "transient": transient,
                    "policy_name": resource.policy_name,
                    "policy_id": result.policy_id or state.remote_policy_id or None,
                    "generation": result.generation,
                    "grants_in_error": errored,
                },
            )
