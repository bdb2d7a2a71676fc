"""apps.pomerium.sync on a ConfigService target (a fake Core, tests/zero/fake_core.py): the
write read back as proof, no date criterion, drift found by comparing content and audited,
routes attached touching only policyIds."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import responses

from apps.access.actions import AccessAction
from apps.access.models import Resource
from apps.access.pomerium_targets import Target
from apps.access.states import SyncStatus
from apps.audit.models import AuditEvent
from apps.pomerium import port, watch
from apps.pomerium.client import ZeroPermanentError
from apps.pomerium.models import PolicySync
from apps.pomerium.sync import SYNCED, sync_resource
from tests.zero.fake_core import FakeCore
from tests.zero.helpers import A, actions, approve, last_seq

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def core(settings: Any) -> Iterator[FakeCore]:
    fake = FakeCore()
    settings.CLUSTER_ID = ""
    settings.ZERO_CLUSTERS = {}
    settings.POMERIUM_CORE_URL = fake.url
    settings.POMERIUM_SHARED_SECRET = fake.shared_secret
    settings.PORTAL_URL = "https://jit.example.com"
    settings.ZERO_SYNC_ENABLED = False  # this test calls the sync itself
    port.reset_store_cache()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake.register(mock)
        yield fake
    port.reset_store_cache()


def _rules(core: FakeCore, resource: Resource) -> list[Any]:
    [policy] = [p for p in core.policies.values() if p.get("name") == resource.policy_name]
    assert isinstance(policy["sourcePpl"], str)
    return json.loads(policy["sourcePpl"])


def test_a_grant_reaches_core_without_a_date_and_is_proven_by_reading_it_back(
    core: FakeCore, resource: Resource, bob: Any
) -> None:
    grant = approve("Alice@Example.com", resource, bob)
    before = last_seq()

    outcome = sync_resource(resource.pk)

    assert outcome.status == SYNCED and outcome.created
    rules = _rules(core, resource)
    assert {"email": {"is": "Alice@Example.com"}} in rules[-1]["allow"]["and"]
    assert "date" not in json.dumps(rules)
    state = PolicySync.objects.get(resource=resource)
    assert state.confirmed_by == "read_back" and state.cluster_id == "target:default"
    assert core.calls["GetPolicy"] >= 1 and core.calls["CreatePolicy"] == 1
    grant.refresh_from_db()
    assert grant.sync_status == SyncStatus.LIVE
    assert actions(before) == [A.ZERO_POLICY_CREATED, AccessAction.GRANT_ENFORCED]
    policy = next(iter(core.policies.values()))
    assert policy["remediation"].endswith("/requests/new?resource=grafana")
    assert policy["explanation"]


def test_a_hand_edit_is_found_by_the_tick_repaired_and_audited(
    core: FakeCore, resource: Resource, bob: Any
) -> None:
    approve("alice@example.com", resource, bob)
    sync_resource(resource.pk)
    state = PolicySync.objects.get(resource=resource)
    mallory = [{"allow": {"and": [{"email": {"is": "mallory@example.com"}}]}}]
    core.hand_edit(state.remote_policy_id, sourcePpl=json.dumps(mallory))
    edited_at = core.policies[state.remote_policy_id]["modifiedAt"]
    before = last_seq()

    drifted, _ = watch.drifted_resources()
    outcome = sync_resource(resource.pk, force=True)

    assert drifted == {resource.pk}
    assert outcome.drift and outcome.status == SYNCED
    assert "mallory" not in json.dumps(_rules(core, resource))
    assert actions(before) == [A.ZERO_DRIFT_REPAIRED]
    event = AuditEvent.objects.get(action=A.ZERO_DRIFT_REPAIRED)
    assert event.details["modified_at"] == edited_at
    assert event.details["last_written_at"] < edited_at.replace("Z", "+00:00")
    assert any("mallory" in rule for rule in event.details["rules_removed"])
    assert watch.drifted_resources()[0] == set()  # repaired: nothing differs any more


def test_the_policy_is_added_to_the_routes_the_resource_names_and_nothing_else(
    core: FakeCore, resource: Resource
) -> None:
    core.add_route("r-1", name="grafana", to=["http://grafana:3000"], policyIds=["keep"])
    resource.routes = ["r-1"]
    resource.save(update_fields=["routes"])

    sync_resource(resource.pk)
    updates_after_first = core.calls["UpdateRoute"]
    sync_resource(resource.pk, force=True)

    state = PolicySync.objects.get(resource=resource)
    assert core.routes["r-1"]["policyIds"] == ["keep", state.remote_policy_id]
    assert core.routes["r-1"]["to"] == ["http://grafana:3000"]
    assert updates_after_first == 1 and core.calls["UpdateRoute"] == 1  # listed: no call


def test_a_missing_route_fails_the_pass_with_cores_message(
    core: FakeCore, resource: Resource
) -> None:
    resource.routes = ["r-gone"]
    resource.save(update_fields=["routes"])

    outcome = sync_resource(resource.pk)

    assert outcome.status == "failed" and "not_found: route r-gone not found" in outcome.error


def test_a_resource_moved_to_another_core_leaves_the_old_policy_deleted(
    settings: Any, core: FakeCore, resource: Resource
) -> None:
    edge = FakeCore(url="http://edge.test:5443")
    settings.POMERIUM_TARGETS = {"edge": Target("edge", "core", edge.url)}
    port.reset_store_cache()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        edge.register(mock)
        core.register(mock)
        assert sync_resource(resource.pk).ok
        old_id = PolicySync.objects.get(resource=resource).remote_policy_id
        resource.cluster = "edge"
        resource.full_clean()
        resource.save()

        outcome = sync_resource(resource.pk, force=True)

    state = PolicySync.objects.get(resource=resource)
    assert outcome.ok and state.cluster_id == "target:edge" and not state.retired_policies
    assert old_id not in core.policies
    assert [p["name"] for p in edge.policies.values()] == ["jit-grafana"]


def test_a_location_of_a_target_no_longer_configured_is_refused(core: FakeCore) -> None:
    store = port.store_for("default")

    assert port.store_at("target:default", store) == (store, False)
    with pytest.raises(ZeroPermanentError, match="'gone' is no longer a ConfigService target"):
        port.store_at("target:gone", store)


def test_duplicate_policies_on_core_are_named_for_core_not_zero(
    core: FakeCore, resource: Resource
) -> None:
    """What the sync says about a Core target names Pomerium Core, never Zero."""
    for _ in range(2):
        core.add_policy(name=resource.policy_name, sourcePpl="[]")

    outcome = sync_resource(resource.pk)

    assert outcome.status == "failed"
    assert "2 Pomerium Core policies are named 'jit-grafana'" in outcome.error
    assert "Delete all but one in Pomerium Core default" in outcome.error
    assert "Zero" not in outcome.error
