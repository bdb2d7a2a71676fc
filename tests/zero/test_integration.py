"""End to end: services -> on_commit -> Redis -> a real Celery worker -> the Zero simulator.

Needs PostgreSQL (the worker process shares the test database) and Redis; see
tests/conftest.py for how these markers skip locally and fail in CI. Outcomes are
polled with a bound, never asserted on timing.
"""

from __future__ import annotations

import random
import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from apps import ppl
from apps.access import services
from apps.access.models import Grant
from apps.access.states import GrantState, SyncStatus
from apps.access.sync import request_sync
from apps.access.tasks import tick
from apps.audit.models import AuditEvent
from apps.pomerium.actions import ZeroAction
from apps.pomerium.tasks import reconcile_all
from devtools.zerosim.simulator import ZeroSimulator
from tests.factories import GrantFactory, ResourceFactory
from tests.support.celery_worker import CeleryWorker
from tests.zero.live import approver, converged, evaluates, eventually, in_threads, pending

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

# ------------------------------------------------------------------------------ scenarios


def test_approve_then_revoke_through_the_worker(live: ZeroSimulator, worker: CeleryWorker) -> None:
    resource = ResourceFactory(slug="grafana")
    boss = approver()
    (req,) = pending([resource], 1)

    grant = services.approve_request(req, approver=boss)

    assert grant is not None
    email = grant.email
    assert eventually(lambda: evaluates(live, "jit-grafana", email)), "never allowed"
    assert not live.evaluate("jit-grafana", email, grant.expires_at + timedelta(seconds=1))
    assert eventually(lambda: Grant.objects.get(pk=grant.pk).sync_status == SyncStatus.LIVE)
    grant.refresh_from_db()
    assert grant.live_at is not None and grant.enforced_at is not None

    services.revoke_grant(grant, actor=boss, reason="done")

    assert eventually(lambda: not live.evaluate("jit-grafana", email)), "still allowed"
    assert eventually(lambda: Grant.objects.get(pk=grant.pk).sync_status == SyncStatus.REMOVED)
    enforced = AuditEvent.objects.filter(action=ZeroAction.ZERO_POLICY_CREATED)
    assert enforced.count() == 1
    assert live.api_token not in worker.log_text()


def test_expiry_is_enforced_by_before_and_tidied_by_tick(live: ZeroSimulator) -> None:
    resource = ResourceFactory(slug="short")
    now = timezone.now()
    with transaction.atomic():
        grant = GrantFactory(
            resource=resource,
            request__resource=resource,
            email="short@example.com",
            not_before=now - timedelta(seconds=55),
            expires_at=now + timedelta(seconds=5),
        )
        request_sync(resource)  # as the services do; enqueued on commit
    assert eventually(lambda: evaluates(live, "jit-short", "short@example.com"))
    # Even before any expiry processing, the rule's "before" closes the door on time.
    assert not live.evaluate("jit-short", "short@example.com", grant.expires_at)

    assert eventually(lambda: timezone.now() > grant.expires_at, timeout=10)
    assert not live.evaluate("jit-short", "short@example.com")
    assert tick()["grants_expired"] == 1  # what beat runs every 30 s

    def removed() -> bool:
        grant.refresh_from_db()
        return grant.sync_status == SyncStatus.REMOVED

    assert eventually(removed), "the next sync did not remove the rule"
    latest = live.policy_by_name("jit-short")
    assert latest is not None and "short@example.com" not in ppl.dumps(latest["ppl"])
    assert grant.state == GrantState.EXPIRED and grant.removed_at is not None
    texts = [ppl.dumps(v["ppl"]) for v in live.history("jit-short") if v["ppl"] is not None]
    carried = [text for text in texts if "short@" in text]
    assert carried and all(ppl.rfc3339(grant.expires_at) in text for text in carried)


def test_100_concurrent_approvals_across_4_resources(live: ZeroSimulator) -> None:
    resources = [ResourceFactory(slug=f"svc{i}") for i in range(4)]
    boss = approver()
    requests = pending(resources, 100)

    grants = in_threads(lambda req: services.approve_request(req, approver=boss), requests)

    assert all(g is not None for g in grants)
    assert eventually(lambda: converged(live, resources), timeout=40), "did not converge"
    for grant in grants:
        assert live.evaluate(grant.resource.policy_name, grant.email), grant.email
    print(f"\n100 approvals across 4 resources: {live.write_count} policy writes")
    assert live.write_count < 100


def test_faults_converge_after_recovery(live: ZeroSimulator) -> None:
    resources = [ResourceFactory(slug=f"flaky{i}") for i in range(4)]
    boss = approver()
    requests = pending(resources, 200)
    live.set_faults(error_rate=0.3, latency=(0.0, 0.03), seed=7)

    grants = in_threads(lambda req: services.approve_request(req, approver=boss), requests)
    revoked = random.Random(7).sample(grants, 50)
    in_threads(lambda g: services.revoke_grant(g, actor=boss, reason="rotated"), revoked)
    time.sleep(2)  # let the worker meet some faults
    faults = live.fault_count
    live.set_faults(error_rate=0.0, latency=0.0)
    assert reconcile_all() >= 4

    assert eventually(lambda: converged(live, resources), timeout=60), "did not converge"
    gone = {g.pk for g in revoked}
    for grant in grants:
        allowed = live.evaluate(grant.resource.policy_name, grant.email)
        assert allowed == (grant.pk not in gone), grant.email
    print(f"\nfaults injected: {faults}; policy writes for 250 changes: {live.write_count}")
    assert faults > 0
