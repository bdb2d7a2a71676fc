"""Benchmark of the Zero sync: API calls per approval, writes per burst, approval->live latency.

Runs against the Zero simulator (in this process, real HTTP), a scratch PostgreSQL
database that it creates and drops, Redis, and a real Celery worker subprocess
(prefork, 2 processes). Usage, from the repository root::

    .venv/bin/python bench/zero_sync.py \\
        --database-url postgres://postgres@127.0.0.1:5432/zero_bench \\
        --broker redis://127.0.0.1:6379/3

The database named in --database-url is DROPPED and recreated: give it a scratch name.
Results are printed as Markdown, for a dated file in bench/results/ (see bench/README.md).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from devtools.zerosim.simulator import ZeroSimulator  # noqa: E402  (no Django needed)

TOKEN = ("POST", "/token")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/zero_bench"
        ),
    )
    parser.add_argument(
        "--broker", default=os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/3")
    )
    parser.add_argument("--steady", type=int, default=20, help="approvals for the call count")
    parser.add_argument("--burst", type=int, default=100, help="approvals in the burst")
    parser.add_argument("--latency", type=int, default=40, help="isolated approvals timed")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument(
        "--episodes", type=int, default=3, help="rate-limit episodes for the revocation deadline"
    )
    parser.add_argument("--episode-seconds", type=float, default=30.0)
    return parser.parse_args()


def recreate_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parts.path.lstrip("/")}" WITH (FORCE)')


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def describe(values: list[float]) -> str:
    return (
        f"p50 {statistics.median(values):.0f} ms, p90 {percentile(values, 0.9):.0f} ms, "
        f"p95 {percentile(values, 0.95):.0f} ms, max {max(values):.0f} ms (n={len(values)})"
    )


def wait_for(check: Any, timeout: float = 60.0, interval: float = 0.002) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


@contextmanager
def scratch_stack(database_url: str, broker: str) -> Iterator[tuple[ZeroSimulator, dict[str, str]]]:
    """A started simulator and the environment of this process and its workers (the
    scratch database recreated, Django not set up yet); everything torn down after."""
    sim = ZeroSimulator().start()
    env = {
        "DEBUG": "true",
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "text",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker,
        "ZERO_SYNC_ENABLED": "true",
        "ZERO_API_URL": sim.url,
        "API_USER_TOKEN": sim.api_token,
        "ORGANIZATION_ID": sim.organization_id,
        "CLUSTER_ID": sim.cluster_id,
    }
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "jitportal.settings")
    recreate_database(database_url)
    try:
        yield sim, env
    finally:
        sim.stop()
        from django.db import connections

        connections.close_all()
        drop_database(database_url)


def main() -> None:
    args = parse_args()
    with scratch_stack(args.database_url, args.broker) as (sim, env):
        run(args, sim, env)


def run(args: argparse.Namespace, sim: ZeroSimulator, env: dict[str, str]) -> None:
    import django
    import redis

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from apps.access import services
    from apps.access.models import Grant, Resource
    from apps.access.states import SyncStatus
    from apps.accounts.models import User
    from apps.pomerium.sync import sync_resource
    from tests.support.celery_worker import CeleryWorker, purge_broker

    call_command("migrate", verbosity=0)
    boss = User.objects.create(username="idp|boss", email="boss@example.com")
    tag = uuid.uuid4().hex[:6]
    counter = iter(range(10**6))

    def resource(slug: str) -> Resource:
        return Resource.objects.create(
            slug=slug, name=slug, approver_groups=[], duration_choices=[60]
        )

    def pending(res: Resource, count: int) -> list[Any]:
        requests = []
        for _ in range(count):
            n = next(counter)
            user = User.objects.create(username=f"idp|{tag}-{n}", email=f"u{n}-{tag}@example.com")
            requests.append(
                services.submit_request(
                    requester=user,
                    resource=res,
                    duration_minutes=60,
                    justification="benchmark run of the Zero sync",
                )
            )
        return requests

    boss.is_superuser = True  # may approve every resource
    boss.save()
    results: list[str] = []

    # 1. Steady-state API calls per approval: one synchronous sync per approval, warm client.
    settings.ZERO_SYNC_ENABLED = False  # no worker yet: sync in this process
    steady = resource("steady")
    services.approve_request(pending(steady, 1)[0], approver=boss)
    sync_resource(steady.pk)  # creates the policy, exchanges the token once
    before = sim.calls.copy()
    for req in pending(steady, args.steady):
        services.approve_request(req, approver=boss)
        sync_resource(steady.pk)
    delta = sim.calls - before
    per = sum(delta.values()) / args.steady
    breakdown = ", ".join(
        f"{method} {path.replace('/organizations/{org}', '')} {count / args.steady:.0f}"
        for (method, path), count in sorted(delta.items())
    )
    results.append(
        f"- Zero API calls per approval, steady state (one sync per approval): **{per:.1f}** "
        f"({breakdown}); token exchanges: **{delta[TOKEN]}**"
    )

    # 2 and 3 go through a real worker.
    settings.ZERO_SYNC_ENABLED = True
    purge_broker(args.broker)
    worker = CeleryWorker(env, pool="prefork", concurrency=2)
    with worker:
        # 2. A burst of approvals on one resource, from several threads.
        burst = resource("burst")
        services.approve_request(pending(burst, 1)[0], approver=boss)
        assert wait_for(lambda: sim.policy_by_name("jit-burst") is not None, 30)
        requests = pending(burst, args.burst)
        writes_before, calls_before = sim.write_count, sim.calls.copy()
        started = time.monotonic()

        committed_at: dict[int, datetime] = {}

        def approve(req: Any) -> Any:
            try:
                grant = services.approve_request(req, approver=boss)
                committed_at[grant.pk] = datetime.now(UTC)
                return grant
            finally:
                connection.close()

        with ThreadPoolExecutor(args.threads) as pool:
            grants = list(pool.map(approve, requests))
        approved_in = time.monotonic() - started
        ids = [g.pk for g in grants]

        def all_live() -> bool:
            return not Grant.objects.filter(pk__in=ids).exclude(sync_status=SyncStatus.LIVE)

        assert wait_for(all_live, 120, 0.05), "burst did not converge"
        settled_in = time.monotonic() - started
        writes = sim.write_count - writes_before
        burst_calls: Counter[tuple[str, str]] = sim.calls - calls_before
        # Both clocks are this host's: the worker stamps live_at when Zero confirmed.
        lag = [
            max(0.0, (g.live_at - committed_at[g.pk]).total_seconds() * 1000)
            for g in Grant.objects.filter(pk__in=ids)
        ]
        results.append(
            f"- Burst of {args.burst} approvals on one resource ({args.threads} threads, "
            f"approved in {approved_in:.1f} s): **{writes} policy writes**, "
            f"{sum(burst_calls.values())} API calls, {burst_calls[TOKEN]} token exchange(s); "
            f"all live {settled_in:.1f} s after the first approval"
        )
        results.append(f"- Approval->live in the burst (commit -> live_at): {describe(lag)}")

        # 2b. The same burst, but all 100 commits land before the worker hears of them
        # (e.g. the worker was busy or restarting): writes are bounded by passes.
        settings.ZERO_SYNC_ENABLED = False
        instant = resource("instant")
        services.approve_request(pending(instant, 1)[0], approver=boss)
        sync_resource(instant.pk)
        for req in pending(instant, args.burst):
            services.approve_request(req, approver=boss)
        settings.ZERO_SYNC_ENABLED = True
        writes_before = sim.write_count
        from apps.pomerium.tasks import sync_resource as sync_task

        for _ in range(args.burst):  # the 100 enqueues their commits would have made
            sync_task.delay(resource_id=instant.pk)
        instant_ids = list(instant.grants.values_list("pk", flat=True))
        assert wait_for(
            lambda: (
                not Grant.objects.filter(pk__in=instant_ids).exclude(sync_status=SyncStatus.LIVE)
            ),
            120,
            0.05,
        )
        results.append(
            f"- Same burst with all {args.burst} commits made before the worker runs "
            f"({args.burst} tasks queued at once): **{sim.write_count - writes_before} "
            "policy write(s)**"
        )

        # 3. Isolated approvals: commit -> the simulated proxy allows the user. First let
        # the worker drain the burst's backlog (its notifications share the queue).
        queue = redis.Redis.from_url(args.broker)
        assert wait_for(
            lambda: sum(queue.llen(q) for q in ("zero", "notifications", "default")) == 0,
            120,
            0.1,
        ), "queues never drained"
        time.sleep(2)
        solo = resource("solo")
        services.approve_request(pending(solo, 1)[0], approver=boss)
        assert wait_for(lambda: sim.policy_by_name("jit-solo") is not None, 30)
        requests = pending(solo, args.latency)
        calls_before = sim.calls.copy()
        latencies = []
        for req in requests:
            grant = services.approve_request(req, approver=boss)
            committed = time.monotonic()
            email = grant.email

            def allowed(email: str = email) -> bool:
                try:
                    return sim.evaluate("jit-solo", email)
                except KeyError:
                    return False

            assert wait_for(allowed, 30), f"{email} never became live"
            latencies.append((time.monotonic() - committed) * 1000)
            time.sleep(0.1)
        solo_calls = sim.calls - calls_before
        results.append(f"- Approval->live, isolated approvals (commit -> proxy allows): "
                       f"{describe(latencies)}")  # fmt: skip
        results.append(
            f"- Through the worker, isolated approvals cost "
            f"{sum(solo_calls.values()) / args.latency:.1f} API calls each, "
            f"{solo_calls[TOKEN]} token exchange(s) in total"
        )

        # 4. The revocation deadline: revoke during a rate-limit episode (every call 429,
        # Retry-After: 1); how long after Zero recovers is the revocation enforced? Beat
        # is played by a thread that enqueues zero.tick every 30 s, as in production.
        if args.episodes:
            results.append(revocation_deadline(args, sim, boss, resource, pending))

    worker.log_path.unlink(missing_ok=True)
    print(f"\nZero sync bench ({os.cpu_count()} CPUs, simulator on loopback, PostgreSQL, Redis,")
    print("Celery prefork worker x2):\n")
    print("\n".join(results))


def revocation_deadline(
    args: argparse.Namespace, sim: ZeroSimulator, boss: Any, resource: Any, pending: Any
) -> str:
    """Seconds from the end of a 429 episode to the proxy denying every revoked user."""
    import threading

    from apps.access import services
    from apps.pomerium.tasks import tick

    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(30.0):
            tick.delay()

    ticker = threading.Thread(target=beat, daemon=True)
    ticker.start()

    def one_episode(episode: int) -> float:
        res = resource(f"deadline{episode}")
        grants = [services.approve_request(req, approver=boss) for req in pending(res, 5)]

        def allowed(email: str) -> bool:
            try:
                return sim.evaluate(res.policy_name, email)
            except KeyError:
                return False

        assert wait_for(lambda: all(allowed(g.email) for g in grants), 60, 0.05)
        sim.set_faults(rate_limit_seconds=args.episode_seconds)
        recovers = time.monotonic() + args.episode_seconds
        time.sleep(2)
        for grant in grants:
            services.revoke_grant(grant, actor=boss, reason="benchmark: incident over")
        assert wait_for(lambda: time.monotonic() >= recovers, args.episode_seconds + 5, 0.1)
        denied = wait_for(lambda: not any(allowed(g.email) for g in grants), 300, 0.05)
        assert denied, "revocation never enforced"
        return (time.monotonic() - recovers) * 1000

    try:
        lags = [one_episode(episode) for episode in range(args.episodes)]
    finally:
        stop.set()
    return (
        f"- Revocation deadline ({args.episodes} episodes of {args.episode_seconds:.0f} s of "
        "429 with Retry-After: 1, 5 revocations 2 s into each, beat's 30 s tick running): "
        f"Zero recovered -> every revoked user denied: {describe(lags)} (target <= 30 000 ms)"
    )


if __name__ == "__main__":
    main()
