"""The tick's watch on Zero's activity log (apps.pomerium.watch): one read per cluster per
tick, someone else's edit to a managed policy found and repaired by a forced sync, the
portal's own writes left alone. Against the simulator over real HTTP; calls are counted."""

from __future__ import annotations

from typing import Any

import pytest

from apps.access.models import Resource
from apps.audit.models import AuditEvent
from apps.pomerium import watch
from apps.pomerium.models import PolicySync, ZeroCluster
from apps.pomerium.sync import sync_resource
from devtools.zerosim.simulator import ZeroSimulator
from tests.factories import ResourceFactory
from tests.zero.helpers import A, approve

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("zero_settings")]

MALLORY = "mallory@example.com"
MALLORY_RULE = {"allow": {"or": [{"email": {"is": MALLORY}}]}}
PROD = "cluster-prod"
LOG = ("GET", "/organizations/{org}/activityLogs")


def _tick(sim: ZeroSimulator) -> tuple[set[int], list[watch.ClusterWatch], int]:
    """What the tick's watch finds, and how many activity-log calls it made."""
    before = sim.calls[LOG]
    drifted, watches = watch.drifted_resources()
    return drifted, watches, sim.calls[LOG] - before


def _edit(sim: ZeroSimulator, name: str, cluster: str | None = None) -> None:
    policy = sim.policy_by_name(name, cluster=cluster)
    assert policy is not None
    sim.cluster(cluster).hand_edit(name, [*policy["ppl"], MALLORY_RULE], MALLORY)


def test_a_console_edit_is_found_by_the_next_tick_in_one_call_and_repaired(
    sim: ZeroSimulator, resource: Resource, bob: Any
) -> None:
    approve("alice@example.com", resource, bob)
    sync_resource(resource.pk)
    assert _tick(sim)[0] == set()  # the first read sets the cursor; our create is ours
    _edit(sim, "jit-grafana")
    assert sim.evaluate("jit-grafana", MALLORY)  # auto-apply: she is in, for now

    drifted, (found,), calls = _tick(sim)

    assert drifted == {resource.pk} and calls == 1
    assert found.editors == {resource.pk: [MALLORY]} and found.entries == 1
    # What the tick enqueues: a forced sync, which overwrites and names her.
    outcome = sync_resource(resource.pk, force=True)
    assert outcome.drift
    assert not sim.evaluate("jit-grafana", MALLORY)
    repaired = AuditEvent.objects.get(action=A.ZERO_DRIFT_REPAIRED)
    assert repaired.details["changed_by"] == [MALLORY]
    # The repair is the portal's own write: the next tick finds nothing, in one call.
    assert _tick(sim)[0::2] == (set(), 1)
    assert _tick(sim)[0::2] == (set(), 1)


def test_the_portals_own_writes_are_never_drift(
    sim: ZeroSimulator, resource: Resource, bob: Any
) -> None:
    approve("alice@example.com", resource, bob)
    sync_resource(resource.pk)
    _tick(sim)
    for email in ("carol@example.com", "dave@example.com"):
        approve(email, resource, bob)
        sync_resource(resource.pk)

    drifted, (found,), calls = _tick(sim)

    assert drifted == set() and found.entries == 2 and calls == 1


def test_an_edit_with_the_portals_content_by_someone_else_is_still_looked_at(
    sim: ZeroSimulator, resource: Resource, bob: Any
) -> None:
    approve("alice@example.com", resource, bob)
    sync_resource(resource.pk)
    _tick(sim)
    policy = sim.policy_by_name("jit-grafana")
    assert policy is not None
    sim.hand_edit("jit-grafana", policy["ppl"], by_email=MALLORY)  # a no-op re-save

    assert _tick(sim)[0] == {resource.pk}  # hers, whatever it holds: the sync compares
    assert not sync_resource(resource.pk, force=True).wrote  # nothing to repair


def test_a_hand_made_policy_with_a_managed_name_is_looked_at(
    sim: ZeroSimulator, resource: Resource, bob: Any
) -> None:
    sim.state.allow_duplicate_names = True
    approve("alice@example.com", resource, bob)
    sync_resource(resource.pk)
    _tick(sim)
    sim.hand_create("jit-grafana", [MALLORY_RULE], by_email=MALLORY)

    assert _tick(sim)[0] == {resource.pk}
    assert sync_resource(resource.pk, force=True).status == "synced"  # the known id wins
    assert len(PolicySync.objects.get(resource=resource).duplicate_policy_ids) == 2


def test_one_read_per_cluster_and_only_clusters_holding_a_managed_policy(
    settings: Any, sim: ZeroSimulator, bob: Any
) -> None:
    sim.add_cluster(PROD, "ns-prod")
    settings.ZERO_CLUSTERS = {"production": PROD, "idle": "cluster-idle"}
    sim.add_cluster("cluster-idle", "ns-idle")
    staging = ResourceFactory(slug="grafana")
    prod = ResourceFactory(slug="billing", cluster="production")
    approve("alice@example.com", staging, bob)
    approve("dave@example.com", prod, bob)
    sync_resource(staging.pk)
    sync_resource(prod.pk)
    _tick(sim)
    _edit(sim, "jit-billing", cluster=PROD)

    drifted, watches, calls = _tick(sim)

    assert drifted == {prod.pk}
    assert calls == 2  # staging and production; the idle cluster holds no managed policy
    assert sorted(w.cluster_id for w in watches) == sorted([sim.cluster_id, PROD])


def test_more_than_a_page_since_the_last_tick_is_paged_to_the_cursor(
    sim: ZeroSimulator, bob: Any
) -> None:
    resources = [ResourceFactory(slug=f"svc{i}") for i in range(3)]
    for resource in resources:
        approve("alice@example.com", resource, bob)
        sync_resource(resource.pk)
    _tick(sim)
    sim.state.max_page_size = 10
    for _ in range(12):  # 12 of her edits to one policy, more than one page
        _edit(sim, "jit-svc0")

    drifted, (found,), calls = _tick(sim)

    assert drifted == {resources[0].pk} and found.caught_up and calls == 2


def test_a_cursor_out_of_reach_compares_every_managed_policy_of_the_cluster(
    sim: ZeroSimulator, bob: Any
) -> None:
    resources = [ResourceFactory(slug=f"svc{i}") for i in range(3)]
    for resource in resources:
        approve("alice@example.com", resource, bob)
        sync_resource(resource.pk)
    _tick(sim)
    sim.state.max_page_size = 2
    for _ in range(2 * watch.MAX_WATCH_PAGES + 1):
        _edit(sim, "jit-svc0")

    drifted, (found,), calls = _tick(sim)

    assert not found.caught_up and calls == watch.MAX_WATCH_PAGES
    assert drifted == {r.pk for r in resources}
    cursor = ZeroCluster.objects.get(cluster_id=sim.cluster_id).activity_cursor
    assert cursor  # moved on to the newest entry read: the next tick starts from there


def test_an_unreadable_log_is_reported_and_changes_nothing(
    sim: ZeroSimulator, resource: Resource, bob: Any
) -> None:
    approve("alice@example.com", resource, bob)
    sync_resource(resource.pk)
    _tick(sim)
    _edit(sim, "jit-grafana")
    sim.set_cluster_outage(sim.cluster_id, 503)

    drifted, (found,), _ = _tick(sim)

    assert drifted == set() and "503" in found.error
    sim.set_cluster_outage(sim.cluster_id, None)
    assert _tick(sim)[0] == {resource.pk}  # found once Zero answers again


def test_a_failing_watch_never_keeps_the_tick_from_its_revocations(
    monkeypatch: pytest.MonkeyPatch, eager_celery: None, sim: ZeroSimulator, resource: Resource,
    bob: Any,
) -> None:  # fmt: skip
    from apps.access import services
    from apps.pomerium import tasks

    grant = approve("alice@example.com", resource, bob)
    sync_resource(resource.pk)
    services.revoke_grant(grant, actor=bob, reason="done")

    def broken() -> None:
        raise RuntimeError("a bug in the watch")

    monkeypatch.setattr(watch, "drifted_resources", broken)
    assert tasks.tick()["synced"] == 1  # the revocation's sync still goes out
    assert not sim.evaluate("jit-grafana", "alice@example.com")
