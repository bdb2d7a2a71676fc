"""End to end: services -> on_commit -> Redis -> a real Celery worker -> the Zero simulator.

Needs PostgreSQL (the worker process shares the test database) and Redis; see
tests/conftest.py for how these markers skip locally and fail in CI. Outcomes are
polled with a bound, never asserted on timing.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone

from apps.access import services
from apps.access.models import AccessRequest, Grant, Resource
from apps.access.states import OPEN_GRANT_STATES, GrantState, SyncStatus
from apps.access.sync import request_sync
from apps.access.tasks import tick
from apps.audit.models import AuditAction, AuditEvent
from apps.zero import ppl
from apps.zero.client import reset_client_cache
from apps.zero.models import PolicySync
from apps.zero.simulator import ZeroSimulator
from apps.zero.sync import desired_policy
from apps.zero.tasks import reconcile_all
from tests.conftest import redis_available, redis_url, require_service
from tests.factories import GrantFactory, ResourceFactory, UserFactory
from tests.zero.worker import CeleryWorker, database_url, purge_broker

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

CLOSED = (GrantState.REVOKED, GrantState.EXPIRED)


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def live_sim() -> Iterator[ZeroSimulator]:
    with ZeroSimulator() as sim:
        yield sim


# One worker per test: it must be stopped (its retries and in-flight syncs with it) before
# the transactional test's database flush, or TRUNCATE deadlocks with its row locks.
@pytest.fixture
def worker(
    django_db_setup: Any, django_db_blocker: Any, live_sim: ZeroSimulator
) -> Iterator[CeleryWorker]:
    """Two prefork worker processes on Redis, sharing the test database."""
    with django_db_blocker.unblock():
        vendor, settings_dict = connection.vendor, dict(connection.settings_dict)
    require_service("PostgreSQL", vendor == "postgresql", "the worker needs a shared database")
    broker = redis_url()
    require_service("Redis", redis_available(broker), f"no answer at {broker}")
    purge_broker(broker)
    env = {
        "DEBUG": "true",
        "LOG_FORMAT": "text",
        "DATABASE_URL": database_url(settings_dict),
        "CELERY_BROKER_URL": broker,
        "ZERO_SYNC_ENABLED": "true",
        "ZERO_API_URL": live_sim.url,
        "API_USER_TOKEN": live_sim.api_token,
        "ORGANIZATION_ID": live_sim.organization_id,
        "CLUSTER_ID": live_sim.cluster_id,
        "PORTAL_URL": "https://jit.example.com",
    }
    celery_worker = CeleryWorker(env, pool="prefork", concurrency=2)
    try:
        yield celery_worker.start()
    finally:
        celery_worker.stop()
        celery_worker.log_path.unlink(missing_ok=True)


@pytest.fixture
def live(settings: Any, live_sim: ZeroSimulator, worker: CeleryWorker) -> Iterator[ZeroSimulator]:
    """This process enqueues to the worker's Redis; the simulator starts empty."""
    from jitportal.celery import app

    broker = redis_url()
    settings.ZERO_SYNC_ENABLED = True
    settings.CELERY_BROKER_URL = broker
    settings.ZERO_API_URL = live_sim.url
    settings.API_USER_TOKEN = live_sim.api_token
    settings.ORGANIZATION_ID = live_sim.organization_id
    settings.CLUSTER_ID = live_sim.cluster_id
    saved = app.conf.broker_url, app.conf.broker_transport_options
    _point_celery_at(app, broker, {})
    reset_client_cache()
    purge_broker(broker)
    live_sim.reset()
    try:
        yield live_sim
    except BaseException:
        print(worker.log_tail())
        raise
    finally:
        _point_celery_at(app, *saved)


def _point_celery_at(app: Any, url: str, options: dict[str, Any]) -> None:
    app.conf.broker_url = url
    app.conf.broker_transport_options = options
    # Forget pools made for the old broker (not closed: kombu shares them process-wide).
    app._pool = None
    app.amqp._producer_pool = None


# ------------------------------------------------------------------------------- helpers


def eventually(check: Callable[[], bool], timeout: float = 20.0, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)


def approver() -> Any:
    return UserFactory(username="idp|boss", email="boss@example.com", groups=["approvers"])


def pending(resources: list[Resource], count: int) -> list[AccessRequest]:
    """``count`` pending requests, spread round-robin over ``resources``."""
    tag = uuid.uuid4().hex[:6]
    requests = []
    for i in range(count):
        user = UserFactory(username=f"idp|{tag}-{i}", email=f"user{i}-{tag}@example.com")
        requests.append(
            services.submit_request(
                requester=user,
                resource=resources[i % len(resources)],
                duration_minutes=60,
                justification="Load testing the approvals",
            )
        )
    return requests


def in_threads(work: Callable[[Any], Any], items: list[Any], threads: int = 8) -> list[Any]:
    def run(item: Any) -> Any:
        try:
            return work(item)
        finally:
            connection.close()  # each thread has its own connection

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(run, items))


def evaluates(sim: ZeroSimulator, name: str, email: str, at: Any = None) -> bool:
    try:
        return sim.evaluate(name, email, at)
    except KeyError:  # no applied policy yet
        return False


def converged(sim: ZeroSimulator, resources: list[Resource]) -> bool:
    """Zero holds exactly the desired policies and every grant's status says so."""
    now = timezone.now()
    for resource in resources:
        resource.refresh_from_db()
        state = PolicySync.objects.filter(resource=resource).first()
        if state is None or state.synced_generation < resource.sync_generation:
            return False
        wanted = ppl.dumps(desired_policy(resource, now))
        latest = sim.policy_by_name(resource.policy_name)
        effective = sim.effective_policy(resource.policy_name)
        if latest is None or effective is None:
            return False
        if {ppl.dumps(ppl.normalize(p["ppl"])) for p in (latest, effective)} != {wanted}:
            return False
        grants = Grant.objects.filter(resource=resource)
        if grants.filter(state__in=OPEN_GRANT_STATES).exclude(sync_status=SyncStatus.LIVE):
            return False
        if grants.filter(state__in=CLOSED).exclude(sync_status=SyncStatus.REMOVED):
            return False
    return True


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
    enforced = AuditEvent.objects.filter(action=AuditAction.ZERO_POLICY_CREATED)
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
    assert latest is not None and "short@example.com" not in latest["ppl"]
    assert grant.state == GrantState.EXPIRED and grant.removed_at is not None
    carried = [v["ppl"] for v in live.history("jit-short") if "short@" in (v["ppl"] or "")]
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
