"""Whose change is it (apps.pomerium.identity): the portal's own Zero user AND content it
attempted, or someone else's. Against the simulator over HTTP where a pass decides it;
the learning rule also on hand-made activity entries, for orders a live run cannot force."""

from __future__ import annotations

from typing import Any

import pytest

from apps.access.models import Resource
from apps.audit.models import AuditEvent
from apps.pomerium import desired, identity
from apps.pomerium.models import PolicySync, ZeroCluster
from apps.pomerium.sync import sync_resource
from devtools.zerosim.simulator import ZeroSimulator
from tests.zero.helpers import A, approve

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("zero_settings")]

MALLORY = "mallory@example.com"
MALLORY_RULE = {"allow": {"or": [{"email": {"is": MALLORY}}]}}


def _changesets_off(sim: ZeroSimulator) -> None:
    sim.auto_apply = False
    sim.state.apply_delay = 0


def _pinned(sim: ZeroSimulator) -> ZeroCluster:
    return ZeroCluster.objects.get(cluster_id=sim.cluster_id)


# ----------------------------------------------------------------- learning and pinning


def test_the_portals_user_is_learnt_from_its_own_create_and_pinned(
    sim: ZeroSimulator, resource: Resource, bob: Any
) -> None:
    _changesets_off(sim)
    approve("alice@example.com", resource, bob)

    outcome = sync_resource(resource.pk)

    assert outcome.applied_changesets  # alone in its changeset and ours: applied
    row = _pinned(sim)
    assert (row.api_user_id, row.api_user_email) == ("api-user-sim", "api@sim")
    policy_id = PolicySync.objects.get(resource=resource).remote_policy_id
    assert f"create entry of the portal's own write to policy {policy_id}" in (row.identity_source)
    applied = AuditEvent.objects.get(action=A.ZERO_CHANGESET_APPLIED)
    assert applied.details["own_api_user"] == "api@sim (id api-user-sim)"


def test_without_a_create_it_is_learnt_from_the_portals_answered_replace(
    sim: ZeroSimulator, resource: Resource, bob: Any
) -> None:
    approve("alice@example.com", resource, bob)
    sync_resource(resource.pk)
    ZeroCluster.objects.all().delete()  # e.g. a policy created before this release
    _changesets_off(sim)
    approve("carol@example.com", resource, bob)

    assert sync_resource(resource.pk).applied_changesets

    assert "update entry of the portal's own write" in _pinned(sim).identity_source


def test_a_pinned_identity_is_never_relearnt(
    sim: ZeroSimulator, resource: Resource, bob: Any
) -> None:
    ZeroCluster.objects.create(
        cluster_id=sim.cluster_id, api_user_id="someone-else", identity_source="by hand"
    )
    _changesets_off(sim)
    approve("alice@example.com", resource, bob)

    outcome = sync_resource(resource.pk)

    # The portal's writes are not "someone-else"'s: not its own, so nothing is applied.
    assert outcome.pending_apply and not outcome.applied_changesets
    assert "made by another Zero user" in outcome.pending_reason
    assert _pinned(sim).api_user_id == "someone-else"


def test_the_setting_names_the_portals_user(
    settings: Any, sim: ZeroSimulator, resource: Resource, bob: Any
) -> None:
    _changesets_off(sim)
    settings.ZERO_API_USER_ID = "api-user-sim"
    approve("alice@example.com", resource, bob)
    assert sync_resource(resource.pk).applied_changesets

    settings.ZERO_API_USER_ID = "not-the-portal"
    approve("carol@example.com", resource, bob)
    outcome = sync_resource(resource.pk)
    assert outcome.pending_apply and not outcome.applied_changesets


def _entry(entry_id: str, kind: str, policy_id: str, rules: list[Any], user: str) -> dict[str, Any]:
    return {
        "id": entry_id,
        "activityType": kind,
        "createdAt": "2026-12-01T10:00:00Z",
        "entity": {
            "id": policy_id,
            "type": "policy",
            "data": {"name": "jit-grafana", "ppl": rules},
        },
        "user": {"id": user, "email": f"{user}@example.com"},
    }


def _digest(rules: list[Any]) -> str:
    return desired.state_digest(desired.managed_state({"name": "jit-grafana", "ppl": rules}))


OLD = [{"allow": {"and": [{"email": {"is": "old@example.com"}}]}}]
NEW = [{"allow": {"and": [{"email": {"is": "new@example.com"}}]}}]


@pytest.mark.parametrize(
    "entries",
    [
        # Someone copies our content right after our write: the newest entry with it is
        # hers, and the one before it is ours, not what we read before writing.
        [
            _entry("3", "update", "p1", NEW, "mallory"),
            _entry("2", "update", "p1", NEW, "portal"),
            _entry("1", "update", "p1", OLD, "portal"),
        ],
        # She wrote it between our read and our write: two entries hold our content.
        [
            _entry("3", "update", "p1", NEW, "portal"),
            _entry("2", "update", "p1", NEW, "mallory"),
            _entry("1", "update", "p1", OLD, "portal"),
        ],
        # Nothing in the log holds the change we made.
        [_entry("1", "update", "p1", OLD, "portal")],
    ],
)
def test_nothing_is_learnt_from_entries_that_could_be_someone_elses(
    entries: list[dict[str, Any]],
) -> None:
    learnt = identity.learn(
        "c1", "p1", entries, written_digest=_digest(NEW), previous_digest=_digest(OLD)
    )
    assert learnt is None
    assert not ZeroCluster.objects.filter(cluster_id="c1").exclude(api_user_id="")


def test_a_create_is_learnt_only_from_the_create_of_the_policy_zero_gave_us() -> None:
    mallorys_update = _entry("2", "update", "p1", NEW, "mallory")
    ours = _entry("1", "create", "p1", NEW, "portal")
    other_policy = _entry("3", "create", "p2", NEW, "mallory")

    learnt = identity.learn(
        "c1",
        "p1",
        [other_policy, mallorys_update, ours],
        written_digest=_digest(NEW),
        previous_digest=None,
    )

    assert learnt is not None and learnt.user_id == "portal"


# -------------------------------------------------------------------- the rule itself


def test_mallorys_copy_of_content_the_portal_once_wrote_is_still_hers(
    sim: ZeroSimulator, resource: Resource, bob: Any
) -> None:
    _changesets_off(sim)
    approve("alice@example.com", resource, bob)
    sync_resource(resource.pk)
    first = sim.policy_by_name("jit-grafana")
    assert first is not None
    approve("carol@example.com", resource, bob)
    sync_resource(resource.pk)
    # She puts back exactly what the portal wrote first (alice only): content the portal
    # attempted, by another author. Then the portal writes again into her changeset.
    sim.hand_edit("jit-grafana", first["ppl"], by_email=MALLORY)
    approve("dave@example.com", resource, bob)

    outcome = sync_resource(resource.pk)

    assert outcome.pending_apply and not outcome.applied_changesets
    assert (
        "update policy 'jit-grafana' by mallory@example.com: made by another Zero user"
        in outcome.pending_reason
    )


def test_the_portals_own_user_writing_content_it_never_attempted_is_not_the_portal(
    sim: ZeroSimulator, resource: Resource, bob: Any
) -> None:
    _changesets_off(sim)
    approve("alice@example.com", resource, bob)
    sync_resource(resource.pk)
    policy = sim.policy_by_name("jit-grafana")
    assert policy is not None
    # Someone holding the API token (or a script) adds a rule with the portal's own user.
    body = {k: policy[k] for k in ("name", "description", "explanation", "remediation")}
    body |= {"enforced": False, "namespaceId": sim.namespace_id}
    sim.state.replace_policy(policy["id"], {**body, "ppl": [*policy["ppl"], MALLORY_RULE]})
    approve("carol@example.com", resource, bob)

    outcome = sync_resource(resource.pk)

    assert outcome.pending_apply and not outcome.applied_changesets
    assert "by api@sim: content the portal never wrote to this policy" in outcome.pending_reason
    assert not sim.evaluate("jit-grafana", MALLORY)


def test_while_the_portal_does_not_know_its_user_nothing_is_its_own() -> None:
    entry = _entry("1", "update", "p1", NEW, "portal")
    attempted = {"p1": {_digest(NEW)}}
    assert identity.why_foreign(entry, None, attempted) == (
        "the portal does not know its own Zero user yet (set ZERO_API_USER_ID)"
    )
    own = identity.Identity("portal", "", "test")
    assert identity.is_own_change(entry, own, attempted)
    assert not identity.is_own_change({**entry, "activityType": "delete"}, own, attempted)
    assert not identity.is_own_change(
        {**entry, "entity": {"id": "p1", "type": "policy"}}, own, attempted
    )  # no data: its content cannot be checked
    assert not identity.is_own_change(entry, own, {"p2": {_digest(NEW)}})  # another policy's
