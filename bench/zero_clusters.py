"""Benchmark: does a second Zero cluster cost the sync anything? One cluster vs two, side by side.

In this process: the Zero simulator over real HTTP and a scratch SQLite database. Each
round syncs ``--resources`` resources after one approval each, once with a single cluster
configured (every resource in ``default``) and once with two (half of them in
``production``), in alternating order; it reports API calls per sync and milliseconds per
sync for both, and their ratio. Usage, from the repository root::

    TMPDIR=/dev/shm .venv/bin/python bench/zero_clusters.py --rounds 3 --resources 20

Results are printed as Markdown, for a dated file in bench/results/ (see bench/README.md).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
# Run with TMPDIR=/dev/shm: on a disk, SQLite's fsync per commit is most of what is measured.
_TMP = Path(tempfile.mkdtemp(prefix="jitportal-bench-"))
_DB = _TMP / "bench.sqlite3"
for _sub in ("queue", "processed"):
    (_TMP / "broker" / _sub).mkdir(parents=True)
os.environ.update(
    {
        "DEBUG": "true",
        "LOG_LEVEL": "WARNING",
        "DATABASE_URL": f"sqlite:///{_DB}",
        "BROKER_DATA_DIR": str(_TMP / "broker"),  # the notices queue here, unconsumed
        "ZERO_SYNC_ENABLED": "false",  # no signal-driven syncs: the bench calls the sync
        "DJANGO_SETTINGS_MODULE": "jitportal.settings",
    }
)

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

from apps.access import services  # noqa: E402
from apps.access.models import Resource  # noqa: E402
from apps.accounts.models import User  # noqa: E402
from apps.pomerium.client import reset_client_cache  # noqa: E402
from apps.pomerium.sync import sync_resource  # noqa: E402
from devtools.zerosim.simulator import ZeroSimulator  # noqa: E402

PROD = "cluster-prod"


def one_run(sim: ZeroSimulator, clusters: int, count: int, tag: str) -> tuple[float, float]:
    """(API calls per sync, ms per sync) for ``count`` fresh resources."""
    settings.ZERO_CLUSTERS = {"production": PROD} if clusters == 2 else {}
    reset_client_cache()
    sim.reset()
    boss = User.objects.get(username="bench|boss")
    resources = []
    for i in range(count):
        cluster = "production" if clusters == 2 and i % 2 else "default"
        resource = Resource.objects.create(
            slug=f"{tag}-{i}", name=f"{tag} {i}", approver_groups=["approvers"], cluster=cluster
        )
        user = User.objects.create(username=f"bench|{tag}-{i}", email=f"{tag}-{i}@example.com")
        req = services.submit_request(
            requester=user, resource=resource, duration_minutes=60, justification="benchmarking"
        )
        services.approve_request(req, approver=boss)
        resources.append(resource)
    calls = 0
    passes: list[int] = []
    started = time.perf_counter()
    for resource in resources:
        outcome = sync_resource(resource.pk)
        assert outcome.ok, outcome.summary()
        passes.append(outcome.passes)
        calls += outcome.calls
    elapsed = time.perf_counter() - started
    assert passes == [1] * count  # one pass per sync: nothing else is measured
    return calls / count, elapsed * 1000 / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--resources", type=int, default=20)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    boss = User.objects.create(username="bench|boss", email="boss@example.com", is_superuser=True)
    assert boss.pk
    with ZeroSimulator() as sim:
        sim.add_cluster(PROD, "ns-prod")
        settings.ZERO_API_URL = sim.url
        settings.API_USER_TOKEN = sim.api_token
        settings.ORGANIZATION_ID = sim.organization_id
        settings.CLUSTER_ID = sim.cluster_id
        results: dict[int, list[tuple[float, float]]] = {1: [], 2: []}
        for round_no in range(args.rounds):
            order = (1, 2) if round_no % 2 == 0 else (2, 1)  # interleaved
            for clusters in order:
                tag = f"r{round_no}c{clusters}"
                results[clusters].append(one_run(sim, clusters, args.resources, tag))
    print(f"| clusters | API calls per sync | ms per sync (median of {args.rounds}, spread) |")
    print("|---|---|---|")
    for clusters in (1, 2):
        calls = [c for c, _ in results[clusters]]
        ms = [m for _, m in results[clusters]]
        print(
            f"| {clusters} | {statistics.median(calls):.2f} | "
            f"{statistics.median(ms):.1f} ({min(ms):.1f} to {max(ms):.1f}) |"
        )
    ratio = statistics.median(m for _, m in results[2]) / statistics.median(
        m for _, m in results[1]
    )
    print(f"\nTwo clusters / one cluster, ms per sync: {ratio:.2f}")


if __name__ == "__main__":
    main()
