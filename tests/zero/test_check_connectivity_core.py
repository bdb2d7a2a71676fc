"""check_connectivity on ConfigService targets, against the Core stand-in over HTTP."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from apps.access.pomerium_targets import parse
from apps.pomerium import port
from devtools.coresim.simulator import CoreSimulator

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def core() -> Iterator[CoreSimulator]:
    with CoreSimulator() as sim:
        yield sim


def _run() -> list[str]:
    out = StringIO()
    # The JWKS endpoint or the broker may be absent here; the Pomerium lines decide.
    with contextlib.suppress(CommandError):
        call_command("check_connectivity", stdout=out)
    return [line for line in out.getvalue().splitlines() if "Pomerium" in line]


def test_each_target_says_flavour_version_write_access_and_its_guarantee(
    settings: Any, core: CoreSimulator
) -> None:
    settings.CLUSTER_ID = ""
    settings.ZERO_CLUSTERS = {}
    settings.POMERIUM_CORE_URL = core.url
    settings.POMERIUM_SHARED_SECRET = core.shared_secret
    settings.POMERIUM_API_TOKEN = core.token(ttl=3600)
    settings.POMERIUM_TARGETS = parse(f"corp=api:{core.url}")
    port.reset_store_cache()

    lines = _run()

    assert lines == [
        f"ok    Pomerium server info [default]: {core.url} is Pomerium core v0.33.1 "
        "(target flavour core)",
        "ok    Pomerium policy write access [default]: created and deleted the scratch policy "
        "'jitportal-connectivity-check'",
        "ok    Pomerium expiry guarantee [default]: a grant's rule is closed by jitportal's "
        "worker (Core has no date criterion): expiry is only as punctual as the worker",
        f"ok    Pomerium server info [corp]: {core.url} is Pomerium core v0.33.1 "
        "(target flavour api)",
        "ok    Pomerium policy write access [corp]: created and deleted the scratch policy "
        "'jitportal-connectivity-check'",
        "ok    Pomerium expiry guarantee [corp]: a grant's rule closes by itself in Pomerium "
        "(date criterion) at its end",
    ]
    assert core.policies() == []  # the scratch policies are gone
    assert core.calls["CreatePolicy"] == 2 and core.calls["DeletePolicy"] == 2
    port.reset_store_cache()
