"""Benchmark of the deadlines on a target that cannot close a rule by itself (Pomerium Core:
no ``date``), side by side with Zero's ``date`` window, in one run.

Three phases, each with ``--grants`` one-minute grants on resources of their own, starts
spread over ``--spread`` seconds (seeded), so the boundaries fall at every phase of the
tick; a real Celery worker (prefork x2):

1. **zero**: the target has every capability. The rule carries its ``date`` window; the
   store's evaluator lets the person in at the start and out at the end by itself.
2. **core**: the target has none. The worker adds each rule at its start and removes it at
   its end, driven by the boundary pass queued with ``eta`` (``apps.pomerium.tasks``). No beat
   runs in this phase: what is measured is the eta path alone.
3. **outage** (core): the worker is stopped before the first end and started again
   ``--outage-after`` seconds after the last; beat is played by a thread that enqueues
   ``zero.tick`` every ``--tick`` seconds from a random phase. Measured: from the worker's
   start to each rule's removal, and whether every overdue change was made within one
   tick period.
4. **outage-lost**: the same, but the broker loses the passes queued for the ends while
   the worker is down (purged): only the tick can catch up.

Latency = first moment the store's evaluator answers the new way (polled every 20 ms) minus
the boundary. The core phases run against the Core stand-in (``devtools/coresim``, real
HTTP, the worker configured with only ``POMERIUM_CORE_URL`` and the shared secret; each
policy attached to a route of its own); the zero phase against the Zero simulator.
``--store zerosim`` runs the core phases on the Zero simulator instead, the worker given
Core's capabilities (none) through a ``sitecustomize`` hook on its ``PYTHONPATH``: it
isolates the worker's scheduling from the Core client's call time. Usage, from the
repository root::

    .venv/bin/python bench/core_deadlines.py \\
        --database-url postgres://postgres@127.0.0.1:5432/core_bench \\
        --broker redis://127.0.0.1:6379/3

The database named in --database-url is DROPPED and recreated: give it a scratch name.
Results are printed as Markdown, for a dated file in bench/results/ (see bench/README.md).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.zero_sync import percentile, scratch_stack, wait_for  # noqa: E402
from devtools.coresim.simulator import CoreSimulator  # noqa: E402
from devtools.zerosim.simulator import ZeroSimulator  # noqa: E402

# The worker of the core phases sees Core's capabilities: none.
CORE_HOOK = (
    "import apps.access.targets as _targets\n_targets.capabilities = lambda name: frozenset()\n"
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/core_bench"
        ),
    )
    parser.add_argument(
        "--broker", default=os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/3")
    )
    parser.add_argument(
        "--store", choices=("coresim", "zerosim"), default="coresim", help="core phases' store"
    )
    parser.add_argument("--grants", type=int, default=20, help="grants per phase (>= 20)")
    parser.add_argument("--spread", type=float, default=20.0, help="starts fall in this span (s)")
    parser.add_argument("--lead", type=float, default=15.0, help="approval to first start (s)")
    parser.add_argument("--tick", type=float, default=30.0, help="beat's zero.tick period (s)")
    parser.add_argument(
        "--outage-after", type=float, default=10.0, help="worker back this long after the last end"
    )
    parser.add_argument("--phases", default="zero,core,outage,outage-lost")
    parser.add_argument("--seed", type=int, default=21)
    return parser.parse_args()


def seconds(values: list[float]) -> str:
    return (
        f"p50 **{statistics.median(values):.2f} s**, p95 **{percentile(values, 0.95):.2f} s**, "
        f"min {min(values):.2f} s, max {max(values):.2f} s, "
        f"spread (max - min) {max(values) - min(values):.2f} s (n={len(values)})"
    )


def main() -> None:
    args = parse_args()
    with scratch_stack(args.database_url, args.broker) as (sim, env):
        run(args, sim, env)


class Phase:
    """One phase's grants: who, on which policy, and each boundary's measured moment."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.grants: list[tuple[str, str, datetime, datetime]] = []  # slug, email, start, end
        self.added: dict[int, float] = {}  # index -> latency after the start (s)
        self.removed: dict[int, float] = {}  # index -> latency after the end (s)


def run(args: argparse.Namespace, sim: ZeroSimulator, env: dict[str, str]) -> None:
    import django

    django.setup()
    from django.core.management import call_command
    from django.utils import timezone

    from apps.access import services
    from apps.access.models import Resource
    from apps.accounts.models import User
    from apps.pomerium.tasks import tick
    from tests.support.celery_worker import CeleryWorker, purge_broker

    call_command("migrate", verbosity=0)
    boss = User.objects.create(username="idp|boss", email="boss@example.com", is_superuser=True)
    rng = random.Random(args.seed)
    core = CoreSimulator().start() if args.store == "coresim" else None
    if core is not None:
        # Only Core's settings: "default" is the Core target, and no Zero is configured.
        core_env = {
            **env,
            "POMERIUM_CORE_URL": core.url,
            "POMERIUM_SHARED_SECRET": core.shared_secret,
            "API_USER_TOKEN": "",
            "CLUSTER_ID": "",
        }
    else:
        hook_dir = tempfile.mkdtemp(prefix="core-bench-hook-")
        Path(hook_dir, "sitecustomize.py").write_text(CORE_HOOK)
        core_env = {**env, "PYTHONPATH": os.pathsep.join([hook_dir, str(REPO)])}

    def allowed(phase: str, name: str, email: str) -> bool:
        try:
            if core is not None and phase != "zero":
                return core.evaluate(name, email)  # the route named like the resource
            return sim.evaluate(f"jit-{name}", email)
        except KeyError:
            return False

    def sim_now() -> datetime:
        return timezone.now()  # the simulator runs in this process, on this clock

    def approve(phase: Phase) -> None:
        first = timezone.now() + timedelta(seconds=args.lead)
        offsets = sorted(rng.uniform(0, args.spread) for _ in range(args.grants))
        for i, offset in enumerate(offsets):
            slug = f"{phase.name}{i}"
            on_core = core is not None and phase.name != "zero"
            if on_core:
                assert core is not None
                core.add_route(slug, f"https://{slug}.example.com")
            resource = Resource.objects.create(
                slug=slug,
                name=f"{phase.name} {i}",
                approver_groups=[],
                duration_choices=[1],
                allow_scheduled=True,
                routes=[slug] if on_core else [],
            )
            email = f"{slug}@example.com"
            user = User.objects.create(username=f"idp|{slug}", email=email)
            start = (first + timedelta(seconds=offset)).replace(microsecond=0)
            req = services.submit_request(
                requester=user,
                resource=resource,
                duration_minutes=1,
                start_at=start,
                justification="benchmark run of the Core deadlines",
            )
            grant = services.approve_request(req, approver=boss)
            assert grant is not None
            phase.grants.append((slug, email, grant.not_before, grant.expires_at))

    def watch(phase: Phase, stop: threading.Event) -> None:
        """Poll the evaluator: record when each rule lets its person in, then out."""
        while not stop.is_set():
            now = sim_now()
            for i, (name, email, start, end) in enumerate(phase.grants):
                if i in phase.removed:
                    continue
                is_in = allowed(phase.name, name, email)
                if i not in phase.added and is_in and now >= start:
                    phase.added[i] = (now - start).total_seconds()
                if i in phase.added and not is_in and now >= end:
                    phase.removed[i] = (now - end).total_seconds()
            if len(phase.removed) == len(phase.grants):
                return
            time.sleep(0.02)

    def measured(phase: Phase, worker: CeleryWorker | None, before_end: Callable[[], Any]) -> None:
        stop = threading.Event()
        watcher = threading.Thread(target=watch, args=(phase, stop), daemon=True)
        watcher.start()
        last_end = max(end for *_, end in phase.grants)
        before_end()
        budget = (last_end - sim_now()).total_seconds() + args.outage_after + 3 * args.tick + 60
        done = wait_for(lambda: len(phase.removed) == len(phase.grants), budget, 0.1)
        stop.set()
        watcher.join(timeout=5)
        assert done, (
            f"{phase.name}: {len(phase.added)} added, {len(phase.removed)} removed of "
            f"{len(phase.grants)}" + (f"\n{worker.log_tail()}" if worker else "")
        )

    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    results: dict[str, Phase] = {}
    purge_broker(args.broker)

    if "zero" in phases:
        phase = Phase("zero")
        with CeleryWorker(env, pool="prefork", concurrency=2) as worker:
            approve(phase)
            measured(phase, worker, lambda: None)
        results["zero"] = phase

    if "core" in phases:
        phase = Phase("core")
        purge_broker(args.broker)
        with CeleryWorker(core_env, pool="prefork", concurrency=2) as worker:
            approve(phase)
            measured(phase, worker, lambda: None)
        results["core"] = phase

    def outage_phase(name: str, *, lose_queue: bool) -> tuple[Phase, list[float], float]:
        """Worker down across every end, back ``--outage-after`` s after the last; with
        ``lose_queue`` the broker loses the passes queued for the ends meanwhile, so only
        the tick can catch up. Returns the phase, each removal's delay after the worker was
        started again, and the worker's own start-up time (start to "ready")."""
        phase = Phase(name)
        purge_broker(args.broker)
        worker = CeleryWorker(core_env, pool="prefork", concurrency=2).start()
        stop_beat = threading.Event()
        back: list[datetime] = []
        startup: list[float] = []

        def outage() -> None:
            first_end = min(end for *_, end in phase.grants)
            last_end = max(end for *_, end in phase.grants)
            # Every rule is in before the outage begins.
            assert wait_for(lambda: len(phase.added) == len(phase.grants), 120, 0.05), (
                f"{name}: only {len(phase.added)} rules added"
            )
            time.sleep(max(0.0, (first_end - sim_now()).total_seconds() - 2))
            worker.stop()
            if lose_queue:
                purge_broker(args.broker)
            time.sleep(max(0.0, (last_end - sim_now()).total_seconds() + args.outage_after))
            back.append(sim_now())
            started = time.monotonic()
            worker.start()
            startup.append(time.monotonic() - started)
            phase_offset = rng.uniform(0, args.tick)

            def beat() -> None:
                if not stop_beat.wait(phase_offset):
                    tick.delay()
                    while not stop_beat.wait(args.tick):
                        tick.delay()

            threading.Thread(target=beat, daemon=True).start()

        try:
            approve(phase)
            measured(phase, worker, outage)
        finally:
            stop_beat.set()
            worker.stop()
        delays = [
            (end + timedelta(seconds=phase.removed[i]) - back[0]).total_seconds()
            for i, (*_, end) in enumerate(phase.grants)
        ]
        return phase, delays, startup[0]

    recoveries: dict[str, tuple[list[float], float]] = {}
    for name, lose in (("outage", False), ("outage-lost", True)):
        if name in phases:
            phase, delays, startup = outage_phase(name, lose_queue=lose)
            results[name] = phase
            recoveries[name] = (delays, startup)

    if core is not None:
        core.stop()
    print(f"\nCore deadlines bench ({os.cpu_count()} CPUs, core phases on {args.store}, "
          "PostgreSQL, Redis, Celery prefork worker x2):\n")  # fmt: skip
    print("| phase | who closes | rule added after the start | rule removed after the end |")
    print("|---|---|---|---|")
    for name, phase in results.items():
        who = "Pomerium (`date`)" if name == "zero" else "jitportal's worker"
        added = list(phase.added.values())
        removed = list(phase.removed.values())
        if name.startswith("outage"):
            print(f"| {name} | {who} | {seconds(added)} | (worker down across every end) |")
        else:
            print(f"| {name} | {who} | {seconds(added)} | {seconds(removed)} |")
    for name, (delays, startup) in recoveries.items():
        within = sum(1 for value in delays if value <= args.tick)
        how = (
            "the broker lost the passes queued for the ends: the tick alone"
            if name == "outage-lost"
            else "the passes queued for the ends kept by the broker, and the tick"
        )
        print(
            f"\n- {name} ({how}): worker down across {len(delays)} ends, started again "
            f"{args.outage_after:.0f} s after the last (start-up to ready {startup:.1f} s); "
            f"from that start to each removal: {seconds(delays)}; within one tick "
            f"({args.tick:.0f} s): {within} of {len(delays)}"
        )
    print(
        "- Deadlines of issue #21: removed <= 2 s after the end, added <= 2 s after the start, "
        "every overdue change within 30 s of the worker's return"
    )


if __name__ == "__main__":
    main()
