"""Fixtures for the Zero client, PPL and simulator tests (no database needed)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from apps.pomerium.client import ZeroClient, reset_client_cache
from devtools.zerosim.simulator import ZeroSimulator

# The live stack (simulator + real worker) of the integration tests, on request only.
from tests.zero.live import live, live_sim, worker, worker_env  # noqa: F401

# The Core stand-in and a worker with only Core settings (tests/zero/test_core_windows.py).
from tests.zero.test_core_integration import core, core_live  # noqa: F401


@pytest.fixture
def sim() -> Iterator[ZeroSimulator]:
    """A fresh simulator on a free loopback port."""
    with ZeroSimulator() as simulator:
        yield simulator


@pytest.fixture
def zero(sim: ZeroSimulator) -> Iterator[ZeroClient]:
    """A real client talking HTTP to ``sim``."""
    client = ZeroClient(sim.url, sim.api_token, sim.organization_id, sim.cluster_id, timeout=5)
    yield client
    client.session.close()


@pytest.fixture(autouse=True)
def _fresh_client_cache() -> Iterator[None]:
    reset_client_cache()
    yield
    reset_client_cache()


@pytest.fixture
def zero_settings(settings: Any, sim: ZeroSimulator) -> ZeroSimulator:
    """Point the portal's Zero settings at ``sim`` (the process-wide client follows)."""
    settings.ZERO_API_URL = sim.url
    settings.API_USER_TOKEN = sim.api_token
    settings.ORGANIZATION_ID = sim.organization_id
    settings.CLUSTER_ID = sim.cluster_id
    settings.ZERO_TIMEOUT_SECONDS = 5.0
    settings.ZERO_APPLY_CHANGESETS = True
    settings.PORTAL_URL = "https://jit.example.com"
    reset_client_cache()
    return sim


@pytest.fixture
def resource() -> Any:
    """The Grafana resource most sync tests use (modules with a richer one override it)."""
    from tests.factories import ResourceFactory

    return ResourceFactory(slug="grafana", name="Grafana admin")


# ``bob``, an approver of that resource, is the shared one (``tests/support/people.py``);
# ``eager_celery`` is in ``tests/conftest.py``.
