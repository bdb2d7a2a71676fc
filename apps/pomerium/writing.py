"""Writing a resource's policy to its target: find it, create or replace it, remember
what was written, and prove it is enforced (changesets, or a read-back).

``remote_phase`` is every remote call of one pass; it fills the pass's ``PassResult`` and
raises ``ZeroError``. Before each write the content is remembered as attempted
(``PolicySync.attempted_digests``), and after it what the target holds
(``remote_digest``), at once and outside the pass's final transaction: a write whose
answer was lost is then recognised as the portal's own, not as drift.
"""

from __future__ import annotations

import logging
from typing import Any

from django.utils import timezone

from apps import ppl as ppl_lib
from apps.access import targets
from apps.access.models import Resource
from apps.pomerium import desired, identity, port, remote
from apps.pomerium.actions import ZeroAction
from apps.pomerium.client import ZeroPermanentError
from apps.pomerium.models import PolicySync
from apps.pomerium.outcomes import PassResult
from apps.pomerium.port import PolicyStore

__all__ = [
    "MAX_ATTEMPTED",
    "DuplicatePolicies",
    "PolicyRefused",
    "remote_phase",
    "without_doubtful_rules",
]

logger = logging.getLogger("apps.pomerium.sync")

REFUSED_STATUSES = (400, 422)


class PolicyRefused(ZeroPermanentError):
    """Zero answered a policy create or replace with 400/422: it refuses what was sent."""


def _refused(exc: ZeroPermanentError) -> ZeroPermanentError:
    """The error to raise for a failed policy write: ``PolicyRefused`` for a refusal."""
    if exc.status in REFUSED_STATUSES:
        return PolicyRefused(str(exc), status=exc.status, retry_after=exc.retry_after)
    return exc


def without_doubtful_rules(
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
    who = targets.enforcer(resource.cluster)
    reason = (
        f"{who} refused the policy when this grant's rule was added ({exc}); the rule was "
        "left out so that every other change, removals included, is written"
    )
    for gid in doubtful:
        result.refused[gid] = reason
    result.wanted = {gid: key for gid, key in result.wanted.items() if gid not in doubtful}
    logger.warning(
        "%s refused the policy of %s; writing it without %d new grant rule(s)",
        who,
        resource.slug,
        len(doubtful),
    )
    return desired.properties(resource, desired.render(resource, result.wanted))


class DuplicatePolicies(ZeroPermanentError):
    """More than one Zero policy carries the resource's policy name."""


MAX_ATTEMPTED = 10  # write attempts remembered to recognise a lost answer


def remote_phase(
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
                logger.warning("Policy %s vanished before the write", result.policy_id)
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
                "%s policy %s of %s is gone; looking it up by name",
                targets.enforcer(resource.cluster),
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
            f"{len(ids)} {targets.enforcer(resource.cluster)} policies are named "
            f"{resource.policy_name!r} ({', '.join(ids)}); the portal will not pick one. "
            f"Delete all but one in {targets.console(resource.cluster)}, then sync again"
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
            "note": f"{targets.enforcer(state.resource.cluster)} holds a write the portal "
            "attempted whose answer was lost; not a hand edit",
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
