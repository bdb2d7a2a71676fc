"""The live stack of the Zero integration tests: the simulator, a real Celery worker on
Redis sharing the PostgreSQL test database, and helpers that poll outcomes with a bound.

Test modules import the fixtures they use (``live``, ``worker``, ``live_sim``).
"""

from __future__ import annotations

import inspect
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from apps import ppl
from apps.access import services
from apps.access.models import AccessRequest, Grant, Resource
from apps.access.states import OPEN_GRANT_STATES, GrantState, SyncStatus
from apps.pomerium.client import reset_client_cache
from apps.pomerium.models import PolicySync
from apps.pomerium.sync import desired_policy
from devtools.zerosim.simulator import ZeroSimulator
from tests.conftest import redis_available, redis_url, require_service
from tests.factories import UserFactory
from tests.support.celery_worker import CeleryWorker, database_url, purge_broker

CLOSED = (GrantState.REVOKED, GrantState.EXPIRED)
SIM_DEFAULTS = inspect.signature(ZeroSimulator).parameters


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def live_sim() -> Iterator[ZeroSimulator]:
    with ZeroSimulator() as sim:
        yield sim


@pytest.fixture
def worker_env(
    django_db_setup: Any, django_db_blocker: Any, live_sim: ZeroSimulator
) -> dict[str, str]:
    """The environment of a worker process: the test database, Redis, the simulator."""
    with django_db_blocker.unblock():
        vendor, settings_dict = connection.vendor, dict(connection.settings_dict)
    require_service("PostgreSQL", vendor == "postgresql", "the worker needs a shared database")
    broker = redis_url()
    require_service("Redis", redis_available(broker), f"no answer at {broker}")
    purge_broker(broker)
    return {
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


# One worker per test: it must be stopped (its retries and in-flight syncs with it) before
# the transactional test's database flush, or TRUNCATE deadlocks with its row locks.
@pytest.fixture
def worker(worker_env: dict[str, str]) -> Iterator[CeleryWorker]:
    """Two prefork worker processes on Redis consuming every queue."""
    celery_worker = CeleryWorker(worker_env, pool="prefork", concurrency=2)
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
    # The simulator lives for the module; a test's settings must not reach the next one.
    live_sim.configure(
        auto_apply=True,
        max_page_size=SIM_DEFAULTS["max_page_size"].default,
        apply_delay=SIM_DEFAULTS["apply_delay"].default,
        allow_duplicate_names=False,
        cluster_read_status=200,
        cluster_list_status=200,
        apply_failure=None,
        activity_delay=0,
        refused_ppl=[],
    )
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
