"""Windows the worker opens and closes on Pomerium Core, with a real Celery worker and the
Core stand-in (devtools/coresim) over HTTP: a one-minute grant's rule leaves at its end, a
worker stopped across an end removes it when it is back (and the end, unenforced meanwhile,
raises the overdue alert), a recurring window is opened and closed by the worker.

No beat runs here: what opens and closes the rules is the pass queued for the boundary's
second (``apps.pomerium.tasks.schedule_boundary``), or, after the outage, that pass delivered
late and the tick called once, as beat would. The recurring window is placed on the real
clock (the next whole minute, in UTC), since the worker is another process.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from apps.access import services
from apps.access.models import Grant, Resource
from apps.access.states import GrantState, SyncStatus
from apps.audit.models import AuditEvent
from apps.pomerium import sync
from apps.pomerium.actions import ZeroAction
from apps.pomerium.models import PolicySync
from apps.pomerium.tasks import sync_resource, tick
from devtools.coresim.simulator import CoreSimulator
from tests.factories import GrantFactory, ResourceFactory, UserFactory
from tests.zero.live import approver, eventually

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

# Far below the tick's 30 s: only the pass queued for the boundary can meet it (no beat runs).
AT_THE_BOUNDARY = 10.0


def one_minute_grant(core: CoreSimulator, slug: str) -> tuple[Resource, Grant]:
    core.add_route(slug, f"https://{slug}.example.com")
    resource = ResourceFactory(slug=slug, routes=[slug], duration_choices=[1])
    boss = approver()
    user = UserFactory(username=f"idp|{slug}", email=f"First.Last+{slug}@Example.com")
    req = services.submit_request(
        requester=user, resource=resource, duration_minutes=1, justification="A quick look"
    )
    grant = services.approve_request(req, approver=boss)
    assert grant is not None
    return resource, grant


def seconds_until(moment: datetime) -> float:
    return (moment - timezone.now()).total_seconds()


def test_a_one_minute_grants_rule_leaves_at_its_end(core_live: Any) -> None:
    core, worker = core_live
    resource, grant = one_minute_grant(core, "grafana")
    assert eventually(lambda: core.evaluate("grafana", grant.email)), "never allowed"
    policy = core.policy_by_name("jit-grafana")
    assert policy is not None and "date" not in policy["sourcePpl"]
    # The pass records its next boundary just after the write Core already enforces.
    assert eventually(
        lambda: PolicySync.objects.get(resource=resource).due_at == grant.expires_at, 10
    )

    assert eventually(
        lambda: timezone.now() >= grant.expires_at, seconds_until(grant.expires_at) + 5, 0.05
    )
    assert eventually(lambda: not core.evaluate("grafana", grant.email), AT_THE_BOUNDARY, 0.05), (
        f"still allowed {AT_THE_BOUNDARY:.0f} s after the end:\n{worker.log_tail()}"
    )
    # Recorded just after the write: no boundary is left.
    assert eventually(lambda: PolicySync.objects.get(resource=resource).due_at is None, 10)


def test_a_worker_stopped_across_an_end_removes_the_rule_when_it_is_back(
    core_live: Any, settings: Any
) -> None:
    core, worker = core_live
    resource, grant = one_minute_grant(core, "kibana")
    assert eventually(lambda: core.evaluate("kibana", grant.email)), "never allowed"
    assert eventually(lambda: Grant.objects.get(pk=grant.pk).sync_status == SyncStatus.LIVE, 20), (
        "never confirmed live"
    )

    worker.stop()
    settings.ZERO_REMOVAL_ALERT_SECONDS = 2
    assert eventually(lambda: timezone.now() >= grant.expires_at + timedelta(seconds=3), 90, 0.1)
    # Core cannot close the rule by itself: with the worker down, the person still gets in,
    # and the end, unenforced past the alert threshold, raises the overdue alert once.
    assert core.evaluate("kibana", grant.email)
    assert resource.pk in sync.resources_to_tick()
    assert sync.flag_overdue_removals() == 1
    alert = AuditEvent.objects.get(action=ZeroAction.ZERO_REMOVAL_OVERDUE)
    assert alert.details["expired"] is True

    worker.start()
    back = timezone.now()
    tick.delay()  # beat's next tick; the pass queued for the end is delivered late as well
    assert eventually(lambda: not core.evaluate("kibana", grant.email), 30, 0.1), (
        f"still allowed 30 s after the worker's return:\n{worker.log_tail()}"
    )
    assert (timezone.now() - back).total_seconds() <= 30


def test_a_recurring_window_is_opened_and_closed_by_the_worker(core_live: Any) -> None:
    core, worker = core_live
    now = timezone.now()
    opens = (now + timedelta(minutes=1)).replace(second=0, microsecond=0)
    if seconds_until(opens) < 15:  # leave the first pass time to run before the window
        opens += timedelta(minutes=1)
    closes = opens + timedelta(minutes=1)
    if closes.date() != opens.date():
        pytest.skip("the window would cross midnight UTC, which a schedule may not")
    schedule = {
        "days": "*",
        "after": opens.strftime("%H:%M"),
        "before": closes.strftime("%H:%M"),
        "timezone": "UTC",
    }
    core.add_route("wiki", "https://wiki.example.com")
    resource = ResourceFactory(slug="wiki", routes=["wiki"], schedule=schedule)
    level = [{"http_method": {"is": "GET"}}]
    grant = GrantFactory(
        resource=resource,
        request__resource=resource,
        email="Alice@Example.com",
        state=GrantState.ACTIVE,
        not_before=now - timedelta(minutes=1),
        expires_at=now + timedelta(hours=1),
        schedule=schedule,
        criteria=[*level, *services.grant_criteria(None, schedule)],
    )
    sync_resource.delay(resource_id=resource.pk)
    assert eventually(lambda: PolicySync.objects.filter(resource=resource, due_at=opens).exists())
    assert not core.evaluate("wiki", grant.email), "allowed before its window opened"

    assert eventually(lambda: timezone.now() >= opens, seconds_until(opens) + 5, 0.05)
    assert eventually(lambda: core.evaluate("wiki", grant.email), AT_THE_BOUNDARY, 0.05), (
        f"not allowed {AT_THE_BOUNDARY:.0f} s into its window:\n{worker.log_tail()}"
    )
    policy = core.policy_by_name("jit-wiki")
    assert policy is not None
    for missing in ("date", "day_of_week", "time_of_day"):
        assert missing not in policy["sourcePpl"]
    assert not core.evaluate("wiki", grant.email, method="POST")  # the level still holds
    assert eventually(
        lambda: Grant.objects.get(pk=grant.pk).sync_status == SyncStatus.LIVE, AT_THE_BOUNDARY
    )

    assert eventually(lambda: timezone.now() >= closes, seconds_until(closes) + 5, 0.05)
    assert eventually(lambda: not core.evaluate("wiki", grant.email), AT_THE_BOUNDARY, 0.05), (
        f"still allowed {AT_THE_BOUNDARY:.0f} s after its window closed:\n{worker.log_tail()}"
    )
    # Tomorrow's window lies past the grant's end: no boundary is left to queue.
    assert eventually(lambda: PolicySync.objects.get(resource=resource).due_at is None)
