"""The Celery tasks, run eagerly against the simulator: retries, busy leases, reconcile."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from celery.signals import task_retry
from django.utils import timezone

from apps import ppl
from apps.access import services
from apps.access.models import Grant, Resource
from apps.access.states import SyncStatus
from apps.audit.models import AuditEvent
from apps.pomerium import tasks
from apps.pomerium.actions import ZeroAction
from apps.pomerium.models import PolicySync
from apps.pomerium.sync import resources_to_reconcile, resources_to_tick
from devtools.zerosim.simulator import ZeroSimulator
from tests.factories import GrantFactory, ResourceFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("zero_settings", "eager_celery")]


def approve(email: str, resource: Resource, approver: Any) -> Grant:
    user = UserFactory(username=f"idp|{email}", email=email)
    req = services.submit_request(
        requester=user, resource=resource, duration_minutes=60, justification="Need to debug"
    )
    grant = services.approve_request(req, approver=approver)
    assert grant is not None
    return grant


def fail_first(sim: ZeroSimulator, count: int, status: int = 503) -> list[int]:
    """Answer the next ``count`` API calls with ``status``; returns the running tally."""
    tally = [0]

    def draw(*, is_token: bool) -> tuple[float, int | None]:
        if is_token or tally[0] >= count:
            return 0.0, None
        tally[0] += 1
        return 0.0, status

    sim.draw_fault = draw  # type: ignore[method-assign]
    return tally


def test_backoff_is_capped_exponential_with_jitter_or_retry_after() -> None:
    for failures, base in [(0, 1), (1, 2), (3, 8), (5, 32), (6, 60), (20, 60)]:
        delays = [tasks.backoff(failures) for _ in range(50)]
        assert all(base <= d <= base * 1.5 for d in delays)
    assert 7 <= tasks.backoff(0, retry_after=7) <= 7.5  # Retry-After is a floor
    assert 32 <= tasks.backoff(5, retry_after=1) <= 48  # ... never a replacement
    assert tasks.backoff(0, retry_after=10_000) == tasks.MAX_RETRY_AFTER


def test_transient_failures_are_retried_until_the_sync_lands(sim: ZeroSimulator, bob: Any) -> None:
    resource = ResourceFactory(slug="grafana")
    grant = approve("alice@example.com", resource, bob)
    tally = fail_first(sim, 3)

    result = tasks.sync_resource.apply(kwargs={"resource_id": resource.pk}).get()

    assert tally[0] == 3
    assert result["status"] == "synced"
    assert sim.evaluate("jit-grafana", "alice@example.com")
    grant.refresh_from_db()
    assert grant.sync_status == SyncStatus.LIVE
    # One failure streak, one entry, then the success.
    failed = AuditEvent.objects.filter(action=ZeroAction.ZERO_SYNC_FAILED).count()
    assert failed == 1
    assert PolicySync.objects.get(resource=resource).consecutive_failures == 0


def test_exhausted_retries_leave_the_error_visible(sim: ZeroSimulator, bob: Any) -> None:
    resource = ResourceFactory(slug="grafana")
    grant = approve("alice@example.com", resource, bob)
    sim.set_faults(error_rate=1.0)

    result = tasks.sync_resource.apply(kwargs={"resource_id": resource.pk}).get()

    assert result["status"] == "failed" and "returned" in result["error"]
    state = PolicySync.objects.get(resource=resource)
    assert state.consecutive_failures == tasks.sync_resource.max_retries + 1
    grant.refresh_from_db()
    assert grant.sync_status == SyncStatus.ERROR
    assert resource.pk in resources_to_reconcile()  # the reconcile keeps trying


def test_permanent_failures_are_not_retried(sim: ZeroSimulator, bob: Any) -> None:
    resource = ResourceFactory(slug="grafana")
    approve("alice@example.com", resource, bob)
    tally = fail_first(sim, 100, status=403)

    result = tasks.sync_resource.apply(kwargs={"resource_id": resource.pk}).get()

    # Two refusals: the cluster read (the client falls back to the cluster id as the
    # namespace, as jit-example does) and the policy listing, which fails the pass.
    assert result["status"] == "failed" and tally[0] == 2
    assert PolicySync.objects.get(resource=resource).consecutive_failures == 1


def test_a_busy_resource_ends_the_task_at_once_for_the_holder_to_settle(
    sim: ZeroSimulator, bob: Any
) -> None:
    resource = ResourceFactory(slug="grafana")
    approve("alice@example.com", resource, bob)
    PolicySync.objects.create(
        resource=resource, lease_owner="other", lease_until=timezone.now() + timedelta(minutes=1)
    )

    retried: list[Any] = []

    def count(**details: Any) -> None:
        retried.append(details)

    task_retry.connect(count, weak=False)
    try:
        result = tasks.sync_resource.apply(kwargs={"resource_id": resource.pk}).get()
    finally:
        task_retry.disconnect(count)

    assert result == {"status": "busy"}
    assert retried == []  # no retry: the lease holder re-checks before it lets go
    assert sum(sim.calls.values()) == 0
    assert resource.pk in resources_to_tick()  # and the tick is the backstop


def test_gone_resource_returns_quietly(sim: ZeroSimulator) -> None:
    result = tasks.sync_resource.apply(kwargs={"resource_id": 424242}).get()
    assert result == {"status": "missing"}
    assert sum(sim.calls.values()) == 0


def test_reconcile_repairs_drift_and_catches_up(sim: ZeroSimulator, bob: Any) -> None:
    grafana = ResourceFactory(slug="grafana")
    approve("alice@example.com", grafana, bob)
    tasks.sync_resource.apply(kwargs={"resource_id": grafana.pk})
    sim.hand_edit("jit-grafana", [ppl.DENY_ALL_RULE], by_email="eve@example.com")
    # A change whose enqueue was lost (broker down): only the generation knows.
    db = ResourceFactory(slug="db")
    carol = approve("carol@example.com", db, bob)

    assert tasks.reconcile_all.apply().get() == 2

    assert sim.evaluate("jit-grafana", "alice@example.com")
    assert sim.evaluate("jit-db", "carol@example.com")
    carol.refresh_from_db()
    assert carol.sync_status == SyncStatus.LIVE
    drift = AuditEvent.objects.get(action=ZeroAction.ZERO_DRIFT_REPAIRED)
    assert drift.details["changed_by"] == ["eve@example.com"]


def test_reconcile_covers_archived_resources_until_their_grants_are_removed(
    sim: ZeroSimulator,
) -> None:
    archived = ResourceFactory(slug="old", is_active=False)
    grant = GrantFactory(
        resource=archived, request__resource=archived, state="revoked", email="x@example.com"
    )
    done = ResourceFactory(slug="gone", is_active=False)
    GrantFactory(
        resource=done, request__resource=done, state="expired", sync_status=SyncStatus.REMOVED
    )
    active = ResourceFactory(slug="live")

    assert resources_to_reconcile() == [archived.pk, active.pk]
    tasks.reconcile_all.apply()

    grant.refresh_from_db()
    assert grant.sync_status == SyncStatus.REMOVED
    assert resources_to_reconcile() == [active.pk]


def test_beat_schedule_runs_reconcile_every_five_minutes() -> None:
    from jitportal.celery import app

    schedule = {e["task"]: e["schedule"] for e in app.conf.beat_schedule.values()}
    assert schedule["zero.reconcile_all"] == 300.0
    assert "zero.reconcile_all" in app.tasks and "zero.sync_resource" in app.tasks
