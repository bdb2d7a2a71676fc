"""End to end with two Zero clusters: services -> on_commit -> Redis -> a real Celery worker
-> the simulator's staging and production clusters, over HTTP.

The worker is configured like the demo: ``ZERO_CLUSTERS=staging=…,production=…``, staging the
default, no ``CLUSTER_ID``. Needs PostgreSQL and Redis (see tests/conftest.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from apps.access.models import Grant
from apps.access.states import SyncStatus
from apps.pomerium.client import reset_client_cache
from apps.pomerium.models import PolicySync
from devtools.zerosim.simulator import ZeroSimulator
from tests.factories import ResourceFactory
from tests.zero.live import approver, eventually, pending

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

STAGING, PRODUCTION = "cl-staging", "cl-production"
CLUSTERS = f"staging={STAGING},production={PRODUCTION}"


@pytest.fixture(scope="module")
def live_sim() -> Iterator[ZeroSimulator]:
    with ZeroSimulator(cluster_id=STAGING, namespace_id="ns-staging") as sim:
        sim.add_cluster(PRODUCTION, "ns-production")
        yield sim


@pytest.fixture
def worker_env(worker_env: dict[str, str]) -> dict[str, str]:
    return {
        **worker_env,
        "CLUSTER_ID": "",
        "ZERO_CLUSTERS": CLUSTERS,
        "ZERO_DEFAULT_CLUSTER": "staging",
    }


@pytest.fixture
def clusters_live(live: ZeroSimulator, settings: Any) -> ZeroSimulator:
    settings.CLUSTER_ID = ""
    settings.ZERO_CLUSTERS = {"staging": STAGING, "production": PRODUCTION}
    settings.ZERO_DEFAULT_CLUSTER = "staging"
    reset_client_cache()
    return live


def _status(grant: Grant) -> str:
    return Grant.objects.get(pk=grant.pk).sync_status


def test_a_staging_resource_writes_to_the_staging_cluster_only(
    clusters_live: ZeroSimulator,
) -> None:
    sim = clusters_live
    on_prod = ResourceFactory(slug="billing", cluster="production")
    boss = approver()
    (prod_req,) = pending([on_prod], 1)
    from apps.access import services

    prod_grant = services.approve_request(prod_req, approver=boss)
    assert prod_grant is not None
    assert eventually(lambda: _status(prod_grant) == SyncStatus.LIVE)
    production_before = sim.cluster(PRODUCTION).dump()
    production_calls = sum(sim.calls.values())

    staging = ResourceFactory(slug="grafana")  # the default cluster: staging
    (req,) = pending([staging], 1)
    grant = services.approve_request(req, approver=boss)

    assert grant is not None
    assert eventually(lambda: _status(grant) == SyncStatus.LIVE)
    assert sim.evaluate("jit-grafana", grant.email, cluster=STAGING)
    assert sim.policy_by_name("jit-grafana", cluster=PRODUCTION) is None
    assert sim.cluster(PRODUCTION).dump() == production_before  # production unchanged
    assert sim.cluster(STAGING).write_count == 1 and sim.cluster(PRODUCTION).write_count == 1
    # As with one cluster: the staging client's first sync exchanges its token, reads the
    # namespace, lists the policies by name, creates, reads the settings; nothing else.
    assert sum(sim.calls.values()) - production_calls == 5
    assert PolicySync.objects.get(resource=staging).cluster_id == STAGING


def test_a_production_outage_does_not_stop_the_staging_sync(
    clusters_live: ZeroSimulator,
) -> None:
    from apps.access import services

    sim = clusters_live
    staging = ResourceFactory(slug="grafana")
    on_prod = ResourceFactory(slug="billing", cluster="production")
    boss = approver()
    sim.set_cluster_outage(PRODUCTION, 503)
    prod_req, staging_req = pending([on_prod, staging], 2)

    prod_grant = services.approve_request(prod_req, approver=boss)
    grant = services.approve_request(staging_req, approver=boss)

    assert prod_grant is not None and grant is not None
    assert eventually(lambda: _status(grant) == SyncStatus.LIVE), "staging sync stopped"
    assert sim.evaluate("jit-grafana", grant.email, cluster=STAGING)
    assert eventually(lambda: _status(prod_grant) == SyncStatus.ERROR)
    assert sim.cluster(PRODUCTION).write_count == 0

    sim.set_cluster_outage(PRODUCTION, None)  # the worker's retries land once it is back
    assert eventually(lambda: _status(prod_grant) == SyncStatus.LIVE, timeout=40)
    assert sim.evaluate("jit-billing", prod_grant.email, cluster=PRODUCTION)
    assert sim.policy_by_name("jit-billing", cluster=STAGING) is None
