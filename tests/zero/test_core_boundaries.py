"""Window boundaries the worker enforces on a target without ``date`` (Core), through the sync
and its tasks: the boundary recorded and queued to the second, the tick catching up with
every past one, an overdue removal alerted, a recurring window confirmed window by window.

The policy lives in the Zero simulator here (the sync's port is the same), with the target's
capabilities overridden to Core's, none: only the capabilities decide how rules are written.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from celery.signals import task_retry
from django.utils import timezone

from apps.access import reach, services, targets
from apps.access.actions import AccessAction
from apps.access.models import Grant, Resource
from apps.access.states import GrantState, SyncStatus
from apps.audit.models import AuditEvent
from apps.pomerium import sync, tasks
from apps.pomerium.actions import ZeroAction
from apps.pomerium.models import PolicySync, RemovalAlert
from devtools.zerosim.simulator import ZeroSimulator
from tests.factories import GrantFactory, ResourceFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("zero_settings")]

BERLIN_WEEKDAYS = {
    "days": "mon-fri",
    "after": "09:00",
    "before": "17:00",
    "timezone": "Europe/Berlin",
}


@pytest.fixture(autouse=True)
def core(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(targets, "capabilities", lambda name: frozenset())


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every ``zero.sync_resource`` queued with ``apply_async`` (kwargs and eta)."""
    calls: list[dict[str, Any]] = []

    def capture(*args: Any, **options: Any) -> None:
        calls.append({"kwargs": options.get("kwargs"), "eta": options.get("eta")})

    monkeypatch.setattr(tasks.sync_resource, "apply_async", capture)
    return calls


def core_resource(slug: str = "grafana", **fields: Any) -> Resource:
    return ResourceFactory(
        slug=slug,
        duration_choices=[1, 30, 60, 8 * 60, 3 * 24 * 60],
        max_duration_minutes=3 * 24 * 60,
        **fields,
    )


def approve(resource: Resource, approver: Any, minutes: int = 60, **extra: Any) -> Grant:
    user = UserFactory(username="idp|alice", email="Alice@Example.com")
    req = services.submit_request(
        requester=user,
        resource=resource,
        duration_minutes=minutes,
        justification="Need to debug",
        **extra,
    )
    grant = services.approve_request(req, approver=approver)
    assert grant is not None
    return grant


def rules(sim: ZeroSimulator) -> list[Any]:
    policy = sim.policy_by_name("jit-grafana")
    return policy["ppl"] if policy else []


def test_the_rule_carries_no_date_and_leaves_at_the_boundary(sim: ZeroSimulator, bob: Any) -> None:
    resource = core_resource()
    grant = approve(resource, bob)
    assert sync.sync_resource(resource.pk).status == sync.SYNCED
    assert rules(sim) == [{"allow": {"and": [{"email": {"is": "Alice@Example.com"}}]}}]
    grant.refresh_from_db()
    assert grant.sync_status == SyncStatus.LIVE
    state = PolicySync.objects.get(resource=resource)
    assert state.due_at == grant.expires_at  # the next boundary is recorded
    assert resource.pk not in sync.resources_to_tick()

    # Nothing changed in the database, yet at the boundary the pass is due and writes.
    with time_machine.travel(grant.expires_at, tick=False):
        assert resource.pk in sync.resources_to_tick()
        outcome = sync.sync_resource(resource.pk)
        assert outcome.status == sync.SYNCED and outcome.wrote
        assert "Alice@Example.com" not in str(rules(sim))
        state.refresh_from_db()
        assert state.due_at is None
        assert resource.pk not in sync.resources_to_tick()


def test_a_scheduled_grant_is_added_when_its_window_opens(sim: ZeroSimulator, bob: Any) -> None:
    resource = core_resource()
    start = (timezone.now() + timedelta(minutes=10)).replace(microsecond=0)
    grant = approve(resource, bob, minutes=30, start_at=start)
    assert grant.state == GrantState.SCHEDULED
    sync.sync_resource(resource.pk)
    assert "Alice@Example.com" not in str(rules(sim))
    assert PolicySync.objects.get(resource=resource).due_at == start
    now = timezone.now()
    assert reach.access(grant, now=now).state == reach.OPENS

    with time_machine.travel(start, tick=False):
        assert sync.sync_resource(resource.pk).wrote
        assert "Alice@Example.com" in str(rules(sim))
        grant.refresh_from_db()
        assert grant.sync_status == SyncStatus.LIVE
        assert PolicySync.objects.get(resource=resource).due_at == grant.expires_at


def test_each_pass_queues_the_next_boundary_once_with_its_eta(
    sim: ZeroSimulator, bob: Any, queued: list[dict[str, Any]]
) -> None:
    resource = core_resource()
    grant = approve(resource, bob, minutes=1)
    queued.clear()  # the approval's own sync (no broker here) is not what this test is about

    result = tasks.sync_resource.apply(kwargs={"resource_id": resource.pk}).get()

    assert result["status"] == sync.SYNCED
    assert queued == [
        {
            "kwargs": {"resource_id": resource.pk, "boundary_eta": grant.expires_at.isoformat()},
            "eta": grant.expires_at,
        }
    ]
    # Another pass that writes nothing new for that boundary queues nothing more.
    tasks.sync_resource.apply(kwargs={"resource_id": resource.pk, "force": True}).get()
    assert len(queued) == 1


def test_a_boundary_pass_that_arrives_early_queues_itself_again_unless_superseded(
    sim: ZeroSimulator, bob: Any, queued: list[dict[str, Any]]
) -> None:
    resource = core_resource()
    grant = approve(resource, bob, minutes=1)
    tasks.sync_resource.apply(kwargs={"resource_id": resource.pk}).get()
    queued.clear()
    eta = grant.expires_at.isoformat()

    # Delivered a moment early: nothing to do yet, so it waits for its second again.
    early = tasks.sync_resource.apply(kwargs={"resource_id": resource.pk, "boundary_eta": eta})
    assert early.get()["status"] == sync.UP_TO_DATE
    assert [c["eta"] for c in queued] == [grant.expires_at]

    # A duplicate of a chain that a newer eta replaced ends there.
    PolicySync.objects.filter(resource=resource).update(
        boundary_eta=grant.expires_at - timedelta(seconds=5)
    )
    tasks.sync_resource.apply(kwargs={"resource_id": resource.pk, "boundary_eta": eta}).get()
    assert len(queued) == 1


def test_a_distant_boundary_is_approached_in_hops(
    sim: ZeroSimulator, bob: Any, queued: list[dict[str, Any]]
) -> None:
    resource = core_resource()
    approve(resource, bob, minutes=8 * 60)
    queued.clear()
    before = timezone.now()
    tasks.sync_resource.apply(kwargs={"resource_id": resource.pk}).get()
    (call,) = queued
    assert before + tasks.BOUNDARY_HORIZON <= call["eta"] <= timezone.now() + tasks.BOUNDARY_HORIZON


def test_the_tick_syncs_every_resource_whose_boundary_passed(
    sim: ZeroSimulator, bob: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a worker outage: each boundary missed is caught by the first tick."""
    due, later = core_resource(), core_resource("kibana")
    grant = approve(due, bob, minutes=1)
    GrantFactory(resource=later, expires_at=timezone.now() + timedelta(hours=3))
    for resource in (due, later):
        sync.sync_resource(resource.pk)
    synced: list[dict[str, Any]] = []
    monkeypatch.setattr(tasks.sync_resource, "delay", lambda **kw: synced.append(kw))

    with time_machine.travel(grant.expires_at + timedelta(minutes=5), tick=False):
        summary = tasks.tick()

    assert {"resource_id": due.pk, "from_tick": True} in synced
    assert all(call["resource_id"] != later.pk for call in synced)
    assert summary["synced"] >= 1


def test_an_expiry_not_enforced_in_time_raises_the_overdue_alert(
    sim: ZeroSimulator, bob: Any, settings: Any
) -> None:
    settings.ZERO_REMOVAL_ALERT_SECONDS = 120
    resource = core_resource()
    grant = approve(resource, bob, minutes=1)
    sync.sync_resource(resource.pk)
    grant.refresh_from_db()
    assert grant.sync_status == SyncStatus.LIVE

    # The worker was down across the end: nothing removed the rule.
    with time_machine.travel(grant.expires_at + timedelta(seconds=119), tick=False):
        assert sync.flag_overdue_removals() == 0
    with time_machine.travel(grant.expires_at + timedelta(seconds=121), tick=False):
        assert sync.flag_overdue_removals() == 1
        assert sync.flag_overdue_removals() == 0  # once
    entry = AuditEvent.objects.get(action=ZeroAction.ZERO_REMOVAL_OVERDUE)
    assert entry.details["expired"] is True
    assert entry.details["revoked_at"] == grant.expires_at.isoformat()
    assert RemovalAlert.objects.filter(grant=grant).exists()


def test_an_expiry_on_a_target_that_closes_rules_itself_is_no_alert(
    sim: ZeroSimulator, bob: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(targets, "capabilities", lambda name: frozenset({targets.DATE}))
    resource = core_resource()
    grant = approve(resource, bob, minutes=1)
    with time_machine.travel(grant.expires_at + timedelta(minutes=10), tick=False):
        assert sync.flag_overdue_removals() == 0


def test_a_recurring_window_is_opened_closed_and_confirmed_window_by_window(
    sim: ZeroSimulator, bob: Any
) -> None:
    # Tue 3 March 2026, 08:30 UTC = 09:30 CET: inside Tuesday's window.
    tuesday = datetime(2026, 3, 3, 8, 30, tzinfo=UTC)
    with time_machine.travel(tuesday, tick=False):
        resource = core_resource(schedule=BERLIN_WEEKDAYS)
        grant = approve(resource, bob, minutes=3 * 24 * 60)
        assert sync.sync_resource(resource.pk).status == sync.SYNCED
        assert "Alice@Example.com" in str(rules(sim))
        assert "day_of_week" not in str(rules(sim))
        grant.refresh_from_db()
        assert reach.access(grant, now=tuesday).state == reach.ALLOWED
        assert PolicySync.objects.get(resource=resource).due_at == datetime(
            2026, 3, 3, 16, tzinfo=UTC
        )
    closes = datetime(2026, 3, 3, 16, tzinfo=UTC)
    with time_machine.travel(closes, tick=False):
        assert sync.sync_resource(resource.pk).wrote
        assert "Alice@Example.com" not in str(rules(sim))
        grant.refresh_from_db()
        assert reach.access(grant, now=closes).state == reach.OPENS
    wednesday = datetime(2026, 3, 4, 8, tzinfo=UTC)
    with time_machine.travel(wednesday, tick=False):
        # Before the pass: Tuesday's confirmation does not make Wednesday allowed.
        grant.refresh_from_db()
        assert reach.access(grant, now=wednesday).state == reach.WAITING
        assert sync.sync_resource(resource.pk).wrote
        grant.refresh_from_db()
        assert grant.enforced_at is not None and grant.enforced_at >= wednesday
        assert reach.access(grant, now=wednesday).state == reach.ALLOWED
    enforced = AuditEvent.objects.filter(
        action=AccessAction.GRANT_ENFORCED, target_id=str(grant.pk)
    )
    assert enforced.count() == 2


def test_a_boundary_pass_that_finds_the_lease_held_comes_back_in_a_second(
    sim: ZeroSimulator, bob: Any, queued: list[dict[str, Any]]
) -> None:
    """The holder may have read the windows just before the boundary: the boundary pass
    retries shortly instead of leaving the boundary to the tick (bounded retries)."""
    resource = core_resource()
    grant = approve(resource, bob, minutes=1)
    tasks.sync_resource.apply(kwargs={"resource_id": resource.pk}).get()
    PolicySync.objects.filter(resource=resource).update(
        lease_owner="other", lease_until=timezone.now() + timedelta(minutes=1)
    )
    retried: list[Any] = []

    def count(request: Any = None, **details: Any) -> None:
        retried.append(request)

    task_retry.connect(count, weak=False)
    try:
        with time_machine.travel(grant.expires_at, tick=False):
            tasks.sync_resource.apply(
                kwargs={"resource_id": resource.pk, "boundary_eta": grant.expires_at.isoformat()}
            )
    finally:
        task_retry.disconnect(count)

    assert retried, "a boundary pass that found the lease held was not retried"
    # A plain pass that finds the lease held still ends at once.
    retried.clear()
    task_retry.connect(count, weak=False)
    try:
        result = tasks.sync_resource.apply(kwargs={"resource_id": resource.pk, "force": True}).get()
    finally:
        task_retry.disconnect(count)
    assert result == {"status": "busy"} and retried == []
