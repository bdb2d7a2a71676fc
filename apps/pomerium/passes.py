"""A sync pass, and the passes one ``sync_resource`` call runs under the lease.

``sync_resource`` claims the resource's lease (``apps.pomerium.lease``), runs passes while
changes keep arriving (at least ``ZERO_SYNC_SETTLE_SECONDS`` apart), and returns one
``SyncOutcome``. A pass reads the generation, then the grants, renders the policy
(``apps.pomerium.desired``), makes its remote calls (``apps.pomerium.writing``, following a move
with ``apps.pomerium.moves``) and records the outcome in one transaction
(``apps.pomerium.outcomes``). See ``apps.pomerium.sync`` for the guarantees.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from apps import ppl as ppl_lib
from apps.access import clusters, targets
from apps.access.models import Resource
from apps.pomerium import desired, lease, moves, port, remote, windows, writing
from apps.pomerium.client import ZeroClient, ZeroError
from apps.pomerium.models import PolicySync
from apps.pomerium.outcomes import PassResult, has_unsettled, record_failure, record_success
from apps.pomerium.port import PolicyStore

__all__ = [
    "BUSY",
    "FAILED",
    "MAX_PASSES",
    "MISSING",
    "SYNCED",
    "UP_TO_DATE",
    "SyncOutcome",
    "SyncRefused",
    "sync_resource",
]

logger = logging.getLogger("apps.pomerium.sync")

MAX_PASSES = 8  # per call: the first plus follow-ups for changes made meanwhile

SYNCED = "synced"
UP_TO_DATE = "up_to_date"
BUSY = "busy"
FAILED = "failed"
MISSING = "missing"


@dataclass
class SyncOutcome:
    """What one ``sync_resource`` call did. ``status`` is one of the constants above."""

    resource_id: int
    status: str
    generation: int | None = None
    policy_id: str = ""
    created: bool = False
    wrote: bool = False
    drift: bool = False
    pending_apply: bool = False
    pending_reason: str = ""
    applying: bool = False
    applied_changesets: list[str] = field(default_factory=list)
    live: int = 0
    removed: int = 0
    calls: int = 0
    error: str = ""
    transient: bool = False
    retry_after: float | None = None
    passes: int = 1

    @property
    def ok(self) -> bool:
        return self.status in (SYNCED, UP_TO_DATE)

    def then(self, later: SyncOutcome) -> SyncOutcome:
        """This outcome followed by ``later`` (a follow-up pass), as one."""
        return replace(
            later,
            created=self.created or later.created,
            wrote=self.wrote or later.wrote,
            drift=self.drift or later.drift,
            applied_changesets=self.applied_changesets + later.applied_changesets,
            live=self.live + later.live,
            removed=self.removed + later.removed,
            calls=self.calls + later.calls,
            passes=self.passes + later.passes,
        )

    def summary(self) -> str:
        """One line for logs and the management command."""
        if self.status == FAILED:
            kind = "transient" if self.transient else "permanent"
            return f"failed ({kind}): {self.error}"
        if self.status != SYNCED:
            return self.status.replace("_", " ")
        action = "created" if self.created else "wrote" if self.wrote else "unchanged"
        parts = [f"synced generation {self.generation}", f"policy {self.policy_id} {action}"]
        if self.drift:
            parts.append("drift repaired")
        if self.applied_changesets:
            parts.append(f"{len(self.applied_changesets)} changeset(s) applied")
        if self.pending_apply:
            parts.append(f"not enforced yet: {self.pending_reason or 'changeset pending'}")
        parts.append(f"{self.live} grant(s) live, {self.removed} removed, {self.calls} API calls")
        return "; ".join(parts)


class SyncRefused(Exception):
    """The desired policy cannot be written as configured (e.g. invalid base rules)."""


# --------------------------------------------------------------------------- #
# The pass
# --------------------------------------------------------------------------- #


def sync_resource(
    resource_id: int,
    *,
    client: ZeroClient | None = None,
    now: datetime | None = None,
    force: bool = False,
) -> SyncOutcome:
    """Bring the resource's Zero policy to the desired state and record the outcome.

    ``now`` decides which grant windows are over (default: the current time);
    ``force`` compares with Zero even when the generation says nothing changed
    (reconcile, "Sync now"). Returns a ``SyncOutcome``; Zero errors are recorded and
    returned (``status="failed"``, ``transient`` says whether retrying may help), not
    raised. Must not be called inside a transaction that the caller keeps open: the
    lease and the outcome must be visible to other workers.
    """
    resource = Resource.objects.filter(pk=resource_id).first()
    if resource is None:
        return SyncOutcome(resource_id, MISSING)
    state, _ = PolicySync.objects.get_or_create(resource=resource)
    if not force and _settled(state, resource.sync_generation):
        return SyncOutcome(resource_id, UP_TO_DATE, generation=state.synced_generation)
    owner = lease.new_owner()
    if not lease.claim(state.pk, owner):
        # The holder picks this change up: it re-checks the generation before it lets go.
        return SyncOutcome(resource_id, BUSY, generation=resource.sync_generation)
    outcome: SyncOutcome | None = None
    while True:
        try:
            outcome = _leased_passes(state.pk, owner, client, now, force, outcome)
        finally:
            lease.release(state.pk, owner)
        # A change committed after our last look but before the release found the lease
        # held and left it to us; take the lease back for it, or leave it to whoever has.
        if not (
            outcome.status == SYNCED
            and outcome.passes < MAX_PASSES
            and _changed_since(resource_id, outcome.generation)
            and lease.claim(state.pk, owner)
        ):
            return outcome
        force = False


def _leased_passes(
    state_pk: int,
    owner: str,
    client: ZeroClient | None,
    now: datetime | None,
    force: bool,
    earlier: SyncOutcome | None,
) -> SyncOutcome:
    """Passes under the lease: one, then follow-ups while changes keep arriving.

    Passes start at least ``ZERO_SYNC_SETTLE_SECONDS`` apart, so that one write carries
    everything committed meanwhile (a burst of approvals becomes one write per window,
    not one per approval). The window runs from the previous pass's start, not its end:
    a pass that took longer than the window is followed at once, so a change committed
    during a pass waits at most one window plus one pass. The first pass does not wait,
    so an isolated change reaches Zero at once.
    """
    started = time.monotonic()
    outcome = _leased_pass(state_pk, owner, client, now, force)
    if earlier is not None:
        outcome = earlier.then(outcome)
    while (
        outcome.status == SYNCED
        and outcome.passes < MAX_PASSES
        and _changed_since(outcome.resource_id, outcome.generation)
    ):
        time.sleep(max(0.0, settings.ZERO_SYNC_SETTLE_SECONDS - (time.monotonic() - started)))
        started = time.monotonic()
        lease.renew(state_pk, owner)
        follow = _leased_pass(state_pk, owner, client, now, False)
        if follow.status == UP_TO_DATE:
            break
        outcome = outcome.then(follow)
    return outcome


def _changed_since(resource_id: int, generation: int | None) -> bool:
    """Was a change committed after the pass that read ``generation``?"""
    return Resource.objects.filter(pk=resource_id, sync_generation__gt=generation or 0).exists()


def _settled(state: PolicySync, generation: int) -> bool:
    """Has a successful pass already settled ``generation``, with Zero enforcing it? (A
    resource never synced has not, even at generation 0: its policy must exist; a
    change waiting for a changeset is not settled until Zero applies it; and a window
    boundary the worker must enforce, ``due_at``, unsettles it once it has passed.)"""
    return (
        state.last_success_at is not None
        and (state.due_at is None or state.due_at > timezone.now())
        and state.synced_generation >= generation
        and not state.pending_apply
        and not state.retired_policies
        and state.confirmed_by != remote.CONFIRMED_BY_SETTINGS
    )


def _cluster_client(resource: Resource, base: ZeroClient | None) -> PolicyStore:
    """The store of the resource's target (``port.store_for``): the process-wide one, or,
    for a Zero cluster, one configured like ``base`` (a caller's client, taken to be the
    default cluster's). Raises SyncRefused for a target name that is not configured."""
    try:
        return port.store_for(resource.cluster, base=base)
    except KeyError:
        raise SyncRefused(
            f"the resource names cluster {resource.cluster!r}, which is not configured "
            f"(ZERO_CLUSTERS: {', '.join(clusters.names())})"
        ) from None


def _leased_pass(
    state_pk: int, owner: str, base: ZeroClient | None, now: datetime | None, force: bool
) -> SyncOutcome:
    state = PolicySync.objects.select_related("resource").get(pk=state_pk)
    resource = state.resource
    # Read before the grants: whatever commits after this point bumps the generation
    # past what this pass settles, so a follow-up pass (or its own task) picks it up.
    generation = resource.sync_generation
    outcome = SyncOutcome(resource.pk, SYNCED, generation=generation)
    if not force and _settled(state, generation):
        outcome.status = UP_TO_DATE  # another worker settled it while we queued
        return outcome
    now = now or timezone.now()
    wanted = desired.wanted_grants(resource, now)
    registry = desired.criteria_registry(resource)
    # A grant whose copied criteria the target refuses is left out, never allowed to make
    # the whole write fail: the other grants, and every removal, are still written.
    refused = desired.refused_rules(wanted, registry)
    wanted = {gid: key for gid, key in wanted.items() if gid not in refused}
    props = desired.properties(resource, desired.render(resource, wanted))
    result = PassResult(generation=generation, wanted=wanted, refused=dict(refused), now=now)
    # Where the worker opens and closes windows, the next second a rule must change.
    result.due_at = windows.next_boundary(resource, now)
    result.has_unsettled = has_unsettled(resource, wanted)
    try:
        client = _cluster_client(resource, base)
    except SyncRefused as exc:
        return _failed(outcome, state_pk, resource, result, exc)
    calls_before = sum(client.calls.values())
    try:
        problems = ppl_lib.validate_ppl(resource.base_ppl or [], criteria=registry)
        if problems:
            raise SyncRefused("the resource's base PPL is invalid: " + "; ".join(problems[:3]))
        state = moves.follow_move(state, client.cluster_id, result)
        try:
            writing.remote_phase(client, state, resource, props, result, force)
        except writing.PolicyRefused as exc:
            wanted_before = result.wanted
            props = writing.without_doubtful_rules(resource, result, exc)
            state = PolicySync.objects.select_related("resource").get(pk=state_pk)
            try:
                writing.remote_phase(client, state, resource, props, result, force)
            except writing.PolicyRefused:
                # Refused without the new rules too: they were not the cause (the base
                # rules are, or a rule Zero held). Fail as before, blaming no grant.
                result.refused = {g: r for g, r in result.refused.items() if g in refused}
                result.wanted = wanted_before
                raise exc from None
        moves.retire_moved(client, state, result)
    except (ZeroError, SyncRefused) as exc:
        outcome.calls = sum(client.calls.values()) - calls_before
        return _failed(outcome, state_pk, resource, result, exc)
    except Exception as exc:
        # A bug or a database error: still try to leave a trace on the row and the
        # grants, and let the original error surface either way.
        try:
            _failed(outcome, state_pk, resource, result, exc)
        except Exception:
            logger.exception("could not record the failed sync of %s", resource.slug)
        raise
    outcome.calls = sum(client.calls.values()) - calls_before
    live, removed = record_success(state_pk, owner, resource, result)
    outcome.policy_id = result.policy_id
    outcome.created, outcome.wrote, outcome.drift = result.created, result.wrote, result.drift
    outcome.pending_apply = result.pending_apply
    outcome.pending_reason = result.pending_reason
    outcome.applying = result.applying
    outcome.applied_changesets = result.applied_changesets
    outcome.live, outcome.removed = live, removed
    logger.info(
        "Sync of %s to %s: %s", resource.slug, targets.describe(resource.cluster), outcome.summary()
    )
    return outcome


def _failed(
    outcome: SyncOutcome,
    state_pk: int,
    resource: Resource,
    result: PassResult,
    exc: Exception,
) -> SyncOutcome:
    if isinstance(exc, ZeroError | SyncRefused):
        message = str(exc)
    else:
        message = f"internal error ({type(exc).__name__}); see the worker log"
    outcome.status = FAILED
    outcome.error = message
    outcome.transient = isinstance(exc, ZeroError) and exc.transient
    outcome.retry_after = exc.retry_after if isinstance(exc, ZeroError) else None
    outcome.policy_id = result.policy_id
    outcome.wrote = result.wrote
    logger.warning(
        "Sync of %s to %s failed: %s", resource.slug, targets.describe(resource.cluster), message
    )
    record_failure(state_pk, resource, result, message, transient=outcome.transient)
    return outcome
