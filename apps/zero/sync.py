"""Keep each resource's Zero policy equal to its grants: the database is the truth.

``sync_resource(resource_id)`` guarantees, per call:

* **Serialised per resource.** A lease on the resource's ``PolicySync`` row, claimed
  with a conditional UPDATE (rows changed = 0 -> another sync runs: outcome ``busy``),
  is held across the HTTP calls instead of a database transaction, and released at the
  end, also on error. A crashed holder's lease lapses after ``LEASE_SECONDS``.
* **Nothing lost, little written.** ``Resource.sync_generation`` is read *before* the
  desired state, so a change committed during the sync bumps it past what this pass
  settles; the lease holder runs up to ``MAX_PASSES`` passes while that happens (and
  the change's own task finds the work done). A pass that finds ``synced_generation``
  already at the resource's generation makes no remote call at all (unless ``force``).
  The policy is written only when its managed properties differ from the desired ones.
* **Drift is named.** A remote policy that differs from what the portal last wrote was
  edited elsewhere: it is overwritten and audited as ``zero.drift_repaired`` with the
  rules added/removed and, from Zero's activity log, who edited it. The 30 s tick finds
  such edits in the activity log (``apps.zero.watch``) and forces a pass at once.
* **Live means enforced.** Grants become ``live``/``removed`` only once an answer about
  the write itself proves Zero applied it (its activity entry, or its changeset; never a
  remembered setting: ``remote.settle_changesets``), with that time in ``enforced_at``
  and a ``grant.enforced`` audit entry. When the cluster does not auto-apply changesets
  the portal applies its own, only when every change in it is the portal's own
  (``ZERO_APPLY_CHANGESETS``, ``identity.is_own_change``), or marks grants
  ``pending_apply`` with the reason.
* **One bad rule holds nothing back.** A grant whose copied criteria the target refuses is
  left out of the policy (``error``, ``zero.grant_rule_refused``); if Zero refuses a write
  anyway, it is written again without the grant rules Zero did not already hold. Every
  other grant and every removal is written.
* **Failures are visible.** Unsettled grants turn ``error`` with a readable reason, the
  row keeps ``last_error``, and one ``zero.sync_failed`` entry is written per failure
  streak. Messages come from the Zero client, which redacts tokens.

All per-grant outcomes and audit entries of a pass are written in one short
transaction after the remote calls.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from apps import ppl as ppl_lib
from apps.access import clusters, events, targets
from apps.access.models import Grant, Resource
from apps.access.states import SyncStatus
from apps.audit import services as audit
from apps.audit.services import record
from apps.zero import desired, identity, port, remote, windows
from apps.zero.client import (
    ZeroClient,
    ZeroError,
    ZeroPermanentError,
)
from apps.zero.desired import desired_policy
from apps.zero.models import PolicySync, RemovalAlert
from apps.zero.outcomes import (
    CLOSED_GRANT_STATES,
    PassResult,
    has_unsettled,
    record_failure,
    record_success,
)
from apps.zero.port import PolicyStore

from .actions import ZeroAction

__all__ = ["LEASE_SECONDS", "SyncOutcome", "desired_policy", "resources_to_reconcile"]

logger = logging.getLogger("apps.zero.sync")

LEASE_SECONDS = 120
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
# Lease
# --------------------------------------------------------------------------- #


def _lease_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}:{uuid.uuid4().hex[:8]}"


def _claim_lease(state_pk: int, owner: str) -> bool:
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


def _renew_lease(state_pk: int, owner: str) -> None:
    PolicySync.objects.filter(pk=state_pk, lease_owner=owner).update(
        lease_until=timezone.now() + timedelta(seconds=LEASE_SECONDS)
    )


def _release_lease(state_pk: int, owner: str) -> None:
    PolicySync.objects.filter(pk=state_pk, lease_owner=owner).update(
        lease_owner="", lease_until=None
    )


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
    owner = _lease_owner()
    if not _claim_lease(state.pk, owner):
        # The holder picks this change up: it re-checks the generation before it lets go.
        return SyncOutcome(resource_id, BUSY, generation=resource.sync_generation)
    outcome: SyncOutcome | None = None
    while True:
        try:
            outcome = _leased_passes(state.pk, owner, client, now, force, outcome)
        finally:
            _release_lease(state.pk, owner)
        # A change committed after our last look but before the release found the lease
        # held and left it to us; take the lease back for it, or leave it to whoever has.
        if not (
            outcome.status == SYNCED
            and outcome.passes < MAX_PASSES
            and _changed_since(resource_id, outcome.generation)
            and _claim_lease(state.pk, owner)
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
        _renew_lease(state_pk, owner)
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
        state = _follow_move(state, client.cluster_id, result)
        try:
            _remote(client, state, resource, props, result, force)
        except PolicyRefused as exc:
            wanted_before = result.wanted
            props = _without_doubtful_rules(resource, result, exc)
            state = PolicySync.objects.select_related("resource").get(pk=state_pk)
            try:
                _remote(client, state, resource, props, result, force)
            except PolicyRefused:
                # Refused without the new rules too: they were not the cause (the base
                # rules are, or a rule Zero held). Fail as before, blaming no grant.
                result.refused = {g: r for g, r in result.refused.items() if g in refused}
                result.wanted = wanted_before
                raise exc from None
        _retire_moved(client, state, result)
    except (ZeroError, SyncRefused) as exc:
        outcome.calls = sum(client.calls.values()) - calls_before
        return _failed(outcome, state_pk, resource, result, exc)
    except Exception as exc:
        # A bug or a database error: still try to leave a trace on the row and the
        # grants, and let the original error surface either way.
        try:
            _failed(outcome, state_pk, resource, result, exc)
        except Exception:
            logger.exception("could not record the failed Zero sync of %s", resource.slug)
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
    logger.info("Zero sync of %s: %s", resource.slug, outcome.summary())
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
    logger.warning("Zero sync of %s failed: %s", resource.slug, message)
    record_failure(state_pk, resource, result, message, transient=outcome.transient)
    return outcome


# --------------------------------------------------------------------------- #
# Moving a policy to another cluster
# --------------------------------------------------------------------------- #


def _follow_move(state: PolicySync, cluster_id: str, result: PassResult) -> PolicySync:
    """Start a move when the remembered policy lives in another cluster than the
    resource's: the old policy is queued for retirement and forgotten as "ours", so this
    pass creates (or adopts by name) the policy in the new cluster. Policy ids are unique
    in the organization, so the old id would still be found; it must not be used.

    The domain refuses a cluster change while any grant is not confirmed removed
    (``Resource.cluster_problem``), so the old policy holds no grant: only the base rules.
    """
    result.cluster_id = cluster_id
    holder = state.cluster_id  # empty: never written since clusters were recorded
    if not state.remote_policy_id or not holder or holder == cluster_id:
        return state
    retired = [
        *(state.retired_policies or []),
        {"cluster_id": holder, "policy_id": state.remote_policy_id},
    ]
    logger.info(
        "Zero policy %s of %s moves from cluster %s to %s",
        state.remote_policy_id,
        state.resource.slug,
        holder,
        cluster_id,
    )
    PolicySync.objects.filter(pk=state.pk).update(
        cluster_id=cluster_id,
        retired_policies=retired,
        remote_policy_id="",
        remote_digest="",
        attempted_digests=[],
        routes=[],
        duplicate_policy_ids=[],
        pending_apply=False,
        pending_changeset_ids=[],
        pending_reason="",
    )
    return PolicySync.objects.select_related("resource").get(pk=state.pk)


def _retire_moved(client: PolicyStore, state: PolicySync, result: PassResult) -> None:
    """Delete the policies left in clusters the resource moved away from, but only once
    Zero enforces the policy in the new cluster. A deletion that fails is kept for the
    next pass (the tick keeps syncing a resource with retired policies); it does not fail
    this pass, whose grants are enforced in the new cluster."""
    pending = list(state.retired_policies or [])
    if not pending or result.pending_apply or result.confirmed_at is None:
        return
    kept: list[dict[str, str]] = []
    for old in pending:
        policy_id = str(old.get("policy_id") or "")
        if policy_id == result.policy_id and old.get("cluster_id") == client.cluster_id:
            continue  # moved back before it was deleted: that policy is ours again
        old_client, fresh = port.store_at(str(old.get("cluster_id") or ""), client)
        try:
            old_client.delete_policy(policy_id)
        except ZeroPermanentError as exc:
            if exc.status not in (404, 410):
                logger.warning("could not delete retired Zero policy %s: %s", policy_id, exc)
                kept.append(old)
                continue
        except ZeroError as exc:
            logger.warning("could not delete retired Zero policy %s: %s", policy_id, exc)
            kept.append(old)
            continue
        finally:
            if fresh:
                old_client.session.close()
        result.audit(
            ZeroAction.ZERO_POLICY_WRITTEN,
            {
                "policy_id": policy_id,
                "cluster_id": old.get("cluster_id"),
                "deleted": True,
                "reason": "the resource moved to cluster "
                f"{client.cluster_id}, where policy {result.policy_id} is enforced",
            },
        )
    result.retired = kept


REFUSED_STATUSES = (400, 422)


class PolicyRefused(ZeroPermanentError):
    """Zero answered a policy create or replace with 400/422: it refuses what was sent."""


def _refused(exc: ZeroPermanentError) -> ZeroPermanentError:
    """The error to raise for a failed policy write: ``PolicyRefused`` for a refusal."""
    if exc.status in REFUSED_STATUSES:
        return PolicyRefused(str(exc), status=exc.status, retry_after=exc.retry_after)
    return exc


def _without_doubtful_rules(
    resource: Resource, result: PassResult, exc: PolicyRefused
) -> dict[str, Any]:
    """Zero refused the policy although the portal's checks passed: leave out every grant
    rule Zero did not already hold (the new ones, one of which it refuses), so that the
    write still carries every removal; re-raise when there is none to leave out (then the
    base rules are what Zero refuses). Returns the properties to write instead."""
    held = result.held_rules or set()
    dated = desired.dated(resource)
    doubtful = [
        gid for gid, key in result.wanted.items() if desired.rule_text(key, dated=dated) not in held
    ]
    if not doubtful:
        raise exc
    reason = (
        f"Zero refused the policy when this grant's rule was added ({exc}); the rule was "
        "left out so that every other change, removals included, is written"
    )
    for gid in doubtful:
        result.refused[gid] = reason
    result.wanted = {gid: key for gid, key in result.wanted.items() if gid not in doubtful}
    logger.warning(
        "Zero refused the policy of %s; writing it without %d new grant rule(s)",
        resource.slug,
        len(doubtful),
    )
    return desired.properties(resource, desired.render(resource, result.wanted))


class DuplicatePolicies(ZeroPermanentError):
    """More than one Zero policy carries the resource's policy name."""


MAX_ATTEMPTED = 10  # write attempts remembered to recognise a lost answer


def _remote(
    client: PolicyStore,
    state: PolicySync,
    resource: Resource,
    props: dict[str, Any],
    result: PassResult,
    force: bool,
) -> None:
    """Every Zero call of a pass; fills ``result``. Raises ZeroError."""
    wanted_state = desired.managed_state(props)
    wanted_digest = desired.state_digest(wanted_state)
    policy = _find(client, state, resource, result, check_duplicates=force)
    written_at = timezone.now()
    if policy is None:
        policy = _create_recorded(client, state, resource, props, result, wanted_digest)
        written_at = timezone.now()
    else:
        result.policy_id = str(policy["id"])
        found_state = desired.managed_state(policy)
        if isinstance(found_state["ppl"], list):
            result.held_rules = {ppl_lib.dumps(rule) for rule in found_state["ppl"]}
        found_digest = desired.state_digest(found_state)
        result.remote_digest = found_digest
        if found_digest != wanted_digest:
            try:
                _write(client, state, policy, props, found_state, found_digest, result)
            except ZeroPermanentError as exc:
                if exc.status not in (404, 410):
                    raise
                # Deleted between our read and our write: create it afresh.
                logger.warning("Zero policy %s vanished before the write", result.policy_id)
                policy = _create_recorded(client, state, resource, props, result, wanted_digest)
            written_at = timezone.now()
        elif state.remote_digest != found_digest and found_digest in (
            state.attempted_digests or []
        ):
            # Our earlier write took effect although its answer never reached us.
            _late_confirmed(state, result, found_digest)
    confirmed_routes = _attach_routes(client, state, resource, result, force)
    result.routes = remote.attached_routes(client, state, policy, result.policy_id, force)
    listed = {r.get("id") for r in result.routes if isinstance(r, dict)}
    result.routes += [
        {"id": r, "name": None, "from": None} for r in confirmed_routes if r not in listed
    ]
    # A policy left in a former cluster is deleted once this one is confirmed enforced.
    if (
        result.wrote
        or result.has_unsettled
        or state.pending_apply
        or state.retired_policies
        or state.confirmed_by == remote.CONFIRMED_BY_SETTINGS
        or force
    ):
        if targets.CHANGESETS not in client.capabilities:
            # No changesets: the write is enforced at once; reading it back proves it holds.
            remote.read_back(client, result, wanted_digest)
            return
        own = identity.own_identity(client.cluster_id)
        try:
            remote.settle_changesets(
                port.with_log(client), state, result, own, written_at=written_at
            )
        except remote.ChangesetNeverApplied:
            if not force or result.wrote:
                raise
            # Zero holds our content, but the changeset that carried it failed, so it
            # never took effect. A forced pass (reconcile, "Sync now") submits it again,
            # into a new changeset; the failure stays visible until then.
            _attempt(state, wanted_digest)
            written = client.replace_policy(
                result.policy_id, {**props, "namespaceId": policy.get("namespaceId") or None}
            )
            result.wrote = True
            result.learnable = None  # the same content again: nothing singles this write out
            _remember(state.pk, result, written, wanted_digest)
            result.audit(
                ZeroAction.ZERO_POLICY_WRITTEN,
                {
                    "policy_id": result.policy_id,
                    "policy_name": props["name"],
                    "after_digest": result.remote_digest,
                    "generation": result.generation,
                    "resubmitted": True,
                },
            )
            remote.settle_changesets(
                port.with_log(client), state, result, own, written_at=timezone.now()
            )


def _attach_routes(
    client: PolicyStore, state: PolicySync, resource: Resource, result: PassResult, force: bool
) -> list[str]:
    """Add the policy's id to the ``policyIds`` of each route the resource names
    (``Resource.routes``), touching nothing else on a route; a route that already lists it
    costs one read and no write. Checked when the policy is new, on forced passes, and for
    a route not yet seen attached. Returns the route ids now known to list the policy.
    Raises ZeroError (a missing route fails the pass)."""
    wanted = [r for r in (resource.routes or []) if isinstance(r, str) and r]
    if targets.ROUTES not in client.capabilities:
        return []  # attached by hand there (Resource.clean refuses routes for such a target)
    known = {r.get("id") for r in (state.routes or []) if isinstance(r, dict)}
    confirmed = []
    for route_id in wanted:
        confirmed.append(route_id)
        if not (force or result.created or route_id not in known):
            continue
        if client.attach_policy(route_id, result.policy_id):
            result.audit(
                ZeroAction.ZERO_POLICY_WRITTEN,
                {
                    "policy_id": result.policy_id,
                    "route_id": route_id,
                    "attached_to_route": True,
                    "generation": result.generation,
                },
            )
    return confirmed


def _find(
    client: PolicyStore,
    state: PolicySync,
    resource: Resource,
    result: PassResult,
    *,
    check_duplicates: bool,
) -> dict[str, Any] | None:
    """The resource's policy in Zero, or None when there is none yet.

    By the id the portal remembers; by name when there is no id or Zero no longer has
    it (404). Zero's spec does not say whether names are unique: when several policies
    carry the name the pass fails loudly (``DuplicatePolicies``) rather than pick one,
    unless the remembered id identifies ours, in which case the duplicates are only
    reported. Forced passes look for duplicates even when the id is known.
    """
    if state.remote_policy_id:
        try:
            policy = client.get_policy(state.remote_policy_id)
        except ZeroPermanentError as exc:
            if exc.status not in (404, 410):
                raise
            logger.warning(
                "Zero policy %s of %s is gone; looking it up by name",
                state.remote_policy_id,
                resource.slug,
            )
        else:
            if check_duplicates:
                named = client.find_policies_by_name(resource.policy_name)
                ids = sorted(str(p.get("id")) for p in named)
                result.duplicate_policy_ids = ids if len(ids) > 1 else []
            return policy
    named = client.find_policies_by_name(resource.policy_name)
    if len(named) > 1:
        ids = sorted(str(p.get("id")) for p in named)
        result.duplicate_policy_ids = ids
        raise DuplicatePolicies(
            f"{len(ids)} Zero policies are named {resource.policy_name!r} "
            f"({', '.join(ids)}); the portal will not pick one. Delete all but one in the "
            "Zero console, then sync again"
        )
    result.duplicate_policy_ids = []
    return named[0] if named else None


def _create_recorded(
    client: PolicyStore,
    state: PolicySync,
    resource: Resource,
    props: dict[str, Any],
    result: PassResult,
    wanted_digest: str,
) -> dict[str, Any]:
    """Create the policy, remember it at once, and queue its audit entry."""
    _attempt(state, wanted_digest)
    policy = _create(client, resource, props, result)
    result.created = result.wrote = True
    result.policy_id = str(policy["id"])
    _remember(state.pk, result, policy, wanted_digest)
    result.audit(
        ZeroAction.ZERO_POLICY_CREATED,
        {
            "policy_id": result.policy_id,
            "policy_name": props["name"],
            "digest": result.remote_digest,
            "rules": len(props["ppl"]),
            "grants": len(result.wanted),
            "generation": result.generation,
            "replaces_policy_id": state.remote_policy_id or None,
        },
    )
    return policy


def _create(
    client: PolicyStore, resource: Resource, props: dict[str, Any], result: PassResult
) -> dict[str, Any]:
    """Create the policy. Zero's spec defines no conflict answer: a 409 (or 400 naming a
    duplicate) means it exists after all, e.g. a create whose answer was lost, so the
    one policy by that name is adopted; the next pass compares and writes it."""
    try:
        created = client.create_policy(props)
    except ZeroPermanentError as exc:
        if exc.status not in (400, 409):
            raise _refused(exc) from None
        named = client.find_policies_by_name(resource.policy_name)
        if len(named) != 1:
            raise _refused(exc) from None
        result.duplicate_policy_ids = []
        result.learnable = None  # adopted, not created by us: its create entry is not ours
        return named[0]
    result.learnable = ("create", None)  # Zero answered our create with this policy's id
    return created


def _write(
    client: PolicyStore,
    state: PolicySync,
    policy: dict[str, Any],
    props: dict[str, Any],
    found_state: dict[str, Any],
    found_digest: str,
    result: PassResult,
) -> None:
    wanted_state = desired.managed_state(props)
    wanted_digest = desired.state_digest(wanted_state)
    # Drift: the remote policy is neither what we want nor what we last confirmed. It is
    # someone else's edit unless it is a write of ours whose answer was lost.
    changed = bool(state.remote_digest) and found_digest != state.remote_digest
    drift = False
    editors: list[str] | None = None
    if changed:
        seen = None  # without an activity log, the content alone says whose it is
        if targets.ACTIVITY_LOG in client.capabilities:
            own = identity.own_identity(client.cluster_id)
            seen = remote.hand_editors(
                port.with_log(client), state, result.policy_id, found_digest, own
            )
        ours = seen[1] if seen is not None else found_digest in (state.attempted_digests or [])
        if ours:
            _late_confirmed(state, result, found_digest)
        else:
            drift = True
            editors = seen[0] if seen is not None else None
    body = {**props, "namespaceId": policy.get("namespaceId") or None}
    _attempt(state, wanted_digest)
    try:
        written = client.replace_policy(result.policy_id, body)
    except ZeroPermanentError as exc:
        raise _refused(exc) from None
    result.wrote = True
    result.learnable = ("update", found_digest)  # answered: this replace is ours
    result.drift = drift
    _remember(state.pk, result, written, wanted_digest)
    details: dict[str, Any] = {
        "policy_id": result.policy_id,
        "policy_name": props["name"],
        "before_digest": found_digest,
        "after_digest": result.remote_digest,
        "grants": len(result.wanted),
        "generation": result.generation,
        **desired.diff(found_state, wanted_state),
    }
    if drift:
        details["expected_digest"] = state.remote_digest
        details["changed_by"] = editors
        if policy.get("modifiedAt"):
            # Without an activity log: when the edit was made, next to our last write.
            details["modified_at"] = str(policy["modifiedAt"])
            details["last_written_at"] = (
                state.last_written_at.isoformat() if state.last_written_at else None
            )
        result.audit(ZeroAction.ZERO_DRIFT_REPAIRED, details)
    else:
        details["adopted"] = not state.remote_digest  # first write to a policy found by name
        result.audit(ZeroAction.ZERO_POLICY_WRITTEN, details)


def _late_confirmed(state: PolicySync, result: PassResult, found_digest: str) -> None:
    result.audit(
        ZeroAction.ZERO_WRITE_CONFIRMED,
        {
            "policy_id": result.policy_id,
            "digest": found_digest,
            "previous_digest": state.remote_digest or None,
            "note": "Zero holds a write the portal attempted whose answer was lost; "
            "not a hand edit",
        },
    )
    state.remote_digest = found_digest


def _attempt(state: PolicySync, digest: str) -> None:
    """Remember a write attempt before sending it: if the answer is lost but the write
    took effect, the next pass recognises the content as ours instead of calling it drift."""
    attempted = [d for d in (state.attempted_digests or []) if d != digest][-(MAX_ATTEMPTED - 1) :]
    attempted.append(digest)
    state.attempted_digests = attempted
    PolicySync.objects.filter(pk=state.pk).update(attempted_digests=attempted)


def _remember(state_pk: int, result: PassResult, policy: dict[str, Any], fallback: str) -> None:
    """Store the id and digest of what Zero now holds, at once and outside the final
    transaction: if a later step fails, the next pass must not mistake our own write
    for a hand edit."""
    result.remote_digest = (
        desired.state_digest(desired.managed_state(policy)) if "ppl" in policy else fallback
    )
    PolicySync.objects.filter(pk=state_pk).update(
        remote_policy_id=result.policy_id,
        remote_digest=result.remote_digest,
        last_written_at=timezone.now(),
        **({"cluster_id": result.cluster_id} if result.cluster_id else {}),
    )


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
