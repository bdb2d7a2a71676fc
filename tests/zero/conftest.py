"""Fixtures for the Zero client, PPL and simulator tests (no database needed)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from apps.zero.client import ZeroClient, reset_client_cache
from apps.zero.simulator import ZeroSimulator


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
