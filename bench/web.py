"""Benchmark: page latency under load, /healthz against the dashboard and the admin changelists.

    .venv/bin/python bench/web.py [--before /work/wt-web-before] \\
        [--database-url postgres://postgres@127.0.0.1:5432/web_bench] [--rounds 3] [--seconds 6]

wrk is not installed here, so the load generator is Python: 4 threads, each with one
keep-alive ``http.client`` connection (``--connections``), sending the same GET back to back
for ``--seconds`` (and at least ``--min-requests`` in all), every request carrying a signed
Pomerium assertion (``X-Pomerium-Jwt-Assertion``, ES256, served by a loopback JWKS server
from ``tests/support/jwks.py``) and the session cookie the first answer set, as a browser
behind Pomerium does. The connections open together and warm up with three requests each
(``--warm one-by-one`` opens them one after another, as the script did before 2026-12-07).

The server is gunicorn with the image's config (``jitportal/gunicorn.conf.py``, as the
Dockerfile's CMD) in production mode (DEBUG off, collected static files), with
``WEB_CONCURRENCY`` workers (``--workers``, 2 for this 2-CPU machine; the config's own
default is 3) on PostgreSQL. With ``--before`` a second gunicorn serves an older checkout of
the repository from the same database; each round measures both trees (the order rotates)
and every page in turn, so before and after see the same machine load.

The database named in ``--database-url`` is DROPPED and recreated (its name must contain
"bench" or be h_web); the script migrates it and seeds:

* a requester with 200 open grants (200 resources) and 800 ended ones, 1,000 requests;
* an approver whose resources hold 10,000 requests from 10,000 people and 10,000 grants;
* an auditor, and 10,000 audit entries.

Figures per page: p50 and p99 latency in ms, requests/s; the ratio is the page's p99
divided by /healthz's p99 in the same tree and round. The CPU per request is read from
/proc before and after each measurement: the gunicorn workers' and all of PostgreSQL's
processes (the load generator's own is printed per round); the busiest worker's share of the
workers' CPU says how the connections fell on the workers (50 % is even on two). The tables
show the median over the rounds with the min-max spread.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.jwks import (  # noqa: E402
    AUDIENCE,
    JwksServer,
    SigningKey,
    claims_for,
    mint,
)
from tests.support.processes import free_ports  # noqa: E402

GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
BROKER = "redis://127.0.0.1:6379/4"

# Who the load comes from, and the pages each one loads.
PEOPLE = {
    "requester": ("idp|bench-requester", "requester@bench.example", ["engineering"]),
    "small": ("idp|bench-small", "small@bench.example", ["engineering"]),
    "approver": ("idp|bench-approver", "approver@bench.example", ["approvers"]),
    "auditor": ("idp|bench-auditor", "auditor@bench.example", ["compliance"]),
}
PAGES = [
    ("/healthz", "/healthz", None),
    ("dashboard (200 open grants)", "/", "requester"),
    ("admin: requests (10,000)", "/admin/access/accessrequest/", "approver"),
    ("admin: grants (10,000)", "/admin/access/grant/", "approver"),
    ("admin: resources", "/admin/access/resource/", "approver"),
    ("admin: Zero sync", "/admin/zero/policysync/", "approver"),
    ("admin: audit trail (auditor)", "/admin/audit/auditevent/", "auditor"),
    # The page around the rows: the requests and grants lists filtered to no row at all (a
    # state no row has), so the page is the list's own chrome, filters, count and queries.
    ("admin: requests, no rows", "/admin/access/accessrequest/?state__exact=none", "approver"),
    ("admin: grants, no rows", "/admin/access/grant/?state__exact=none", "approver"),
]
# Pages whose HTML a run with --before compares between the two trees (CSRF token and CSP
# nonce masked): a speed-up must not change what a page shows.
COMPARED = [
    ("dashboard, 5 grants", "/", "small"),
    ("admin: requests", "/admin/access/accessrequest/", "approver"),
    ("admin: grants", "/admin/access/grant/", "approver"),
]


# --- The database ------------------------------------------------------------------------


def recreate_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if "bench" not in name and name != "h_web":
        raise SystemExit(f"refusing to drop {name!r}: its name must contain 'bench'")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def portal_env(database_url: str, jwks_url: str, static_root: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    return {
        **keep,
        "SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "ALLOWED_HOSTS": "127.0.0.1",
        "JWKS_ENDPOINT": jwks_url,
        "POMERIUM_JWT_AUDIENCE": AUDIENCE,
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": BROKER,
        "STATIC_ROOT": str(static_root),
        "PORTAL_APPROVER_GROUPS": "approvers",
        "PORTAL_AUDITOR_GROUPS": "compliance",
        "LOG_LEVEL": "WARNING",
        "GUNICORN_WORKER_TMP_DIR": "/dev/shm",  # noqa: S108 - as in the image
    }


def manage(tree: Path, env: dict[str, str], *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} in {tree} failed:\n{done.stderr[-3000:]}")


def seed(database_url: str) -> None:
    """Bulk-create the history (the people already exist: their first request made them)."""
    os.environ.update(
        DEBUG="true", DJANGO_SETTINGS_MODULE="jitportal.settings", DATABASE_URL=database_url
    )
    import django

    django.setup()
    from django.utils import timezone

    from apps.access.actions import AccessAction
    from apps.access.models import AccessRequest, Grant, Resource
    from apps.access.states import GrantState, RequestState, SyncStatus
    from apps.accounts.models import User
    from apps.audit.models import AuditEvent
    from apps.pomerium.models import PolicySync

    now = timezone.now()
    requester = User.objects.get(username=PEOPLE["requester"][0])
    small = User.objects.get(username=PEOPLE["small"][0])

    def resources(prefix: str, n: int) -> list[Resource]:
        return Resource.objects.bulk_create(
            Resource(
                slug=f"{prefix}-{i}",
                name=f"{prefix.title()} app {i}",
                description="An internal application behind Pomerium",
                approver_groups=["approvers"],
                base_ppl=[{"allow": {"or": [{"groups": {"has": "sre"}}]}}],
                auto_approve_rules=[{"group": "oncall", "max_minutes": 60}],
                break_glass_groups=["oncall"],
            )
            for i in range(n)
        )

    def requests(pairs: list[tuple[Any, Resource]], state: str, at: Any) -> list[AccessRequest]:
        return AccessRequest.objects.bulk_create(
            (
                AccessRequest(
                    requester=user,
                    filed_by=user,
                    resource=resource,
                    duration_minutes=60,
                    justification="Investigating INC-1234: error rates on checkout",
                    ticket="INC-1234",
                    state=state,
                    created_at=at,
                    expires_at=at + timedelta(hours=24),
                )
                for user, resource in pairs
            ),
            batch_size=2000,
        )

    def grants(reqs: list[AccessRequest], state: str, start: Any, sync: str) -> None:
        Grant.objects.bulk_create(
            (
                Grant(
                    request=r,
                    user=r.requester,
                    email=r.requester.email,
                    resource=r.resource,
                    not_before=start,
                    expires_at=start + timedelta(hours=4),
                    state=state,
                    created_at=start,
                    sync_status=sync,
                    live_at=start + timedelta(seconds=1) if sync == SyncStatus.LIVE else None,
                )
                for r in reqs
            ),
            batch_size=2000,
        )

    mine = resources("team", 200)
    live = requests([(requester, r) for r in mine], RequestState.APPROVED, now)
    grants(live, GrantState.ACTIVE, now, SyncStatus.LIVE)
    past = now - timedelta(days=90)
    old = requests([(requester, mine[i % 200]) for i in range(800)], RequestState.APPROVED, past)
    grants(old, GrantState.EXPIRED, past, SyncStatus.REMOVED)
    few = requests([(small, r) for r in mine[:5]], RequestState.APPROVED, now)
    grants(few, GrantState.ACTIVE, now, SyncStatus.LIVE)

    shared = resources("shared", 3)
    people = User.objects.bulk_create(
        (User(username=f"idp|p{i}", email=f"person{i}@bench.example") for i in range(10_000)),
        batch_size=2000,
    )
    decided = requests(
        [(p, shared[i % 3]) for i, p in enumerate(people)], RequestState.APPROVED, now
    )
    grants(decided, GrantState.ACTIVE, now, SyncStatus.LIVE)
    PolicySync.objects.bulk_create(
        PolicySync(
            resource=r,
            remote_policy_id=f"pol-{r.pk}",
            synced_generation=r.sync_generation,
            last_attempt_at=now,
            last_success_at=now,
            routes=[{"name": f"route {r.pk}", "from": f"https://{r.slug}.bench.example"}],
        )
        for r in [*mine, *shared]
    )
    head = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    AuditEvent.objects.bulk_create(
        (
            AuditEvent(
                seq=seq,
                created_at=now,
                actor_label=f"person{seq}@bench.example",
                action=AccessAction.REQUEST_SUBMITTED,
                target_type="accessrequest",
                target_id=str(seq),
                target_repr=f"#{seq}",
                resource_slug="shared-0",
                details={"justification": "Investigating INC-1234", "minutes": 60},
                prev_hash=f"{seq - 1:064x}",
                hash=f"{seq:064x}",
            )
            for seq in range(head + 1, head + 10_001)
        ),
        batch_size=2000,
    )
    from django.db import connection

    with connection.cursor() as cursor:  # what autovacuum does soon after a bulk load
        cursor.execute("ANALYZE")


# --- Servers and load ----------------------------------------------------------------------


class Server:
    def __init__(self, name: str, tree: Path, env: dict[str, str], workers: int, log: Path):
        self.name, self.tree = name, tree
        (self.port,) = free_ports(1)
        self.log = open(log, "w")  # noqa: SIM115
        self.process = subprocess.Popen(
            [GUNICORN, "-c", "jitportal/gunicorn.conf.py", "jitportal.wsgi:application"],
            cwd=tree,
            env={**env, "GUNICORN_BIND": f"127.0.0.1:{self.port}", "WEB_CONCURRENCY": str(workers)},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"gunicorn for {self.name} exited; see {self.log.name}")
            try:
                if Client(self.port, None).get("/healthz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise SystemExit(f"gunicorn for {self.name} did not answer; see {self.log.name}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


class Client:
    """One keep-alive connection, with the person's assertion and session cookie."""

    def __init__(self, port: int, token: str | None) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = {"Host": "127.0.0.1", "X-Forwarded-Proto": "https"}
        if token:
            self.headers["X-Pomerium-Jwt-Assertion"] = token

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            self.conn.request("GET", path, headers=self.headers)
            response = self.conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            # gunicorn closed the idle keep-alive connection (its keepalive timeout, 5 s)
            # while the other connections warmed up: reconnect, as Pomerium would.
            self.conn.close()
            self.conn.request("GET", path, headers=self.headers)
            response = self.conn.getresponse()
        body = response.read()
        cookie = response.getheader("Set-Cookie")
        if cookie:
            self.headers["Cookie"] = cookie.split(";", 1)[0]
        return response.status, body


@dataclass
class Result:
    p50: float
    p99: float
    rps: float
    count: int
    # CPU ms per request: the gunicorn workers, PostgreSQL's processes, this load generator;
    # and the busiest worker's share of the workers' CPU (0.5 = even on two workers).
    cpu_app: float = 0.0
    cpu_db: float = 0.0
    cpu_client: float = 0.0
    busiest_worker: float = 0.0


_TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")


def _processes() -> list[tuple[int, int, str, int]]:
    """(pid, parent pid, command name, CPU ticks so far) of every process, from one read of
    each ``/proc/<pid>/stat`` (none without Linux's /proc: the CPU columns then read 0)."""
    found: list[tuple[int, int, str, int]] = []
    if not Path("/proc").is_dir():
        return found
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                text = (entry / "stat").read_text()
            except OSError:
                continue
            name = text[text.index("(") + 1 : text.rindex(")")]
            fields = text.rsplit(")", 1)[1].split()
            ticks = int(fields[11]) + int(fields[12])  # utime, stime
            found.append((int(entry.name), int(fields[1]), name, ticks))
    return found


def cpu_snapshot(server_pid: int) -> tuple[dict[int, int], dict[int, int], float]:
    """CPU so far: per gunicorn worker, per PostgreSQL process, and this process (ms)."""
    processes = _processes()
    workers = {pid: ticks for pid, ppid, _, ticks in processes if ppid == server_pid}
    database = {pid: ticks for pid, _, name, ticks in processes if name.startswith("postgres")}
    return workers, database, time.process_time() * 1000


def _spent(before: dict[int, int], after: dict[int, int]) -> int:
    """Ticks spent between two snapshots by the processes alive at the second (a process
    that ended in between is not counted: its ticks are gone with it)."""
    return sum(ticks - before.get(pid, 0) for pid, ticks in after.items())


def load(
    port: int, token: str | None, path: str, args: argparse.Namespace, server_pid: int = 0
) -> Result:
    clients = [Client(port, token) for _ in range(args.connections)]
    warm_errors: list[str] = []

    def warm(client: Client) -> None:  # connection, session cookie, the worker's caches
        for _ in range(3):
            status, body = client.get(path)
            if status != 200:
                warm_errors.append(f"GET {path} answered {status}: {body[:300]!r}")
                return

    # The connections open together, as Envoy (in Pomerium) opens upstream connections: a new
    # one only when every open one is busy. Opened one after another into an idle server, they
    # all went to whichever worker won the first accept in about half of the measurements,
    # which halved that measurement's throughput and doubled its p99 (bench/README.md).
    # --warm one-by-one is the old way, kept to compare with runs before 2026-12-07.
    if args.warm == "one-by-one":
        for client in clients:
            warm(client)
    else:
        warmers = [threading.Thread(target=warm, args=(c,)) for c in clients]
        for t in warmers:
            t.start()
        for t in warmers:
            t.join()
    if warm_errors:
        raise SystemExit(warm_errors[0])
    latencies: list[float] = []
    lock = threading.Lock()
    cpu_before = cpu_snapshot(server_pid)
    start = time.perf_counter()
    deadline = start + args.seconds
    hard_stop = start + args.max_seconds

    def run(client: Client) -> None:
        mine = []
        while True:
            now = time.perf_counter()
            if now >= hard_stop or (now >= deadline and len(latencies) >= args.min_requests):
                break
            t0 = time.perf_counter()
            status, _ = client.get(path)
            elapsed = time.perf_counter() - t0
            if status != 200:
                raise RuntimeError(f"GET {path} answered {status}")
            mine.append(elapsed)
            if len(mine) % 10 == 0:
                with lock:
                    latencies.extend(mine)
                    mine = []
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=run, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    cpu_after = cpu_snapshot(server_pid)
    latencies.sort()
    p99_index = min(len(latencies) - 1, int(len(latencies) * 0.99))
    n = len(latencies)
    per_worker = [t - cpu_before[0].get(pid, 0) for pid, t in cpu_after[0].items()]
    return Result(
        p50=statistics.median(latencies) * 1000,
        p99=latencies[p99_index] * 1000,
        rps=n / wall,
        count=n,
        cpu_app=sum(per_worker) * _TICK_MS / n,
        cpu_db=_spent(cpu_before[1], cpu_after[1]) * _TICK_MS / n,
        cpu_client=(cpu_after[2] - cpu_before[2]) / n,
        busiest_worker=max(per_worker) / sum(per_worker) if sum(per_worker) else 0.0,
    )


def same_html(a: bytes, b: bytes) -> bool:
    # The CSRF token and the CSP nonce are fresh in every response.
    mask = re.compile(rb'((?:name="csrfmiddlewaretoken" value=|nonce=)")[^"]+"')
    return mask.sub(rb"\1-", a) == mask.sub(rb"\1-", b)


def spread(values: list[float], fmt: str) -> str:
    mid, low, high = (format(v, fmt) for v in (statistics.median(values), min(values), max(values)))
    return f"{mid} ({low}-{high})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, help="an older checkout to compare with")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/web_bench")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--min-requests", type=int, default=60)
    parser.add_argument("--max-seconds", type=float, default=40.0)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--warm",
        choices=["together", "one-by-one"],
        default="together",
        help="open the connections together (as Envoy does under load) or one after another",
    )
    parser.add_argument("--pages", default="", help="comma-separated page numbers (0 = healthz)")
    parser.add_argument("--seed", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seed:
        seed(args.database_url)
        return

    work = Path(tempfile.mkdtemp(prefix="web-bench-"))
    jwks = JwksServer().start()
    key = jwks.publish(SigningKey.generate("ES256"))
    trees = {"after": ROOT}
    if args.before:
        trees = {"before": args.before.resolve(), **trees}
    tokens = {
        who: mint(key, claims_for(sub, email, groups=groups, name=who.title(), lifetime=7200))
        for who, (sub, email, groups) in PEOPLE.items()
    }
    recreate_database(args.database_url)
    envs = {}
    for name, tree in trees.items():
        envs[name] = portal_env(args.database_url, jwks.url, work / f"static-{name}")
        manage(tree, envs[name], "collectstatic", "--noinput")
    manage(ROOT, envs["after"], "migrate", "--noinput")
    servers = {
        name: Server(name, tree, envs[name], args.workers, work / f"gunicorn-{name}.log")
        for name, tree in trees.items()
    }
    try:
        for server in servers.values():
            server.wait_ready()
        first = servers["after"]
        for who in PEOPLE:  # the first request creates the person, as in production
            status, body = Client(first.port, tokens[who]).get("/preferences")
            assert status == 200, body[:300]
        done = subprocess.run(
            [sys.executable, __file__, "--seed", "--database-url", args.database_url],
            cwd=ROOT,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit("seeding failed")
        if "before" in servers:
            for label, path, who in COMPARED:
                pages = {
                    name: Client(s.port, tokens[who]).get(path)[1] for name, s in servers.items()
                }
                same = same_html(pages["before"], pages["after"])
                print(
                    f"{label} HTML, before vs after: " + ("identical" if same else "DIFFERENT"),
                    file=sys.stderr,
                )
        chosen = [PAGES[int(i)] for i in args.pages.split(",")] if args.pages else PAGES
        if chosen[0][0] != "/healthz":
            chosen = [PAGES[0], *chosen]
        results: dict[tuple[str, str], list[Result]] = {}
        names = list(servers)
        for round_no in range(args.rounds):
            order = names[round_no % len(names) :] + names[: round_no % len(names)]
            for name in order:
                for label, path, who in chosen:
                    result = load(
                        servers[name].port,
                        tokens.get(who or ""),
                        path,
                        args,
                        servers[name].process.pid,
                    )
                    results.setdefault((name, label), []).append(result)
                    print(
                        f"round {round_no + 1} {name:6} {label:30} p50 {result.p50:8.1f} ms "
                        f"p99 {result.p99:8.1f} ms {result.rps:7.1f}/s n={result.count} "
                        f"cpu app {result.cpu_app:.1f} db {result.cpu_db:.1f} "
                        f"client {result.cpu_client:.1f} ms, busiest worker "
                        f"{result.busiest_worker:.0%}",
                        file=sys.stderr,
                    )
        print(
            "| page | tree | p50 ms | p99 ms | requests/s | p99 ÷ /healthz p99 "
            "| CPU ms per request: gunicorn + PostgreSQL | busiest worker |\n"
            "|---|---|---:|---:|---:|---:|---:|---:|"
        )
        for label, _, _ in chosen:
            for name in names:
                rows = results[(name, label)]
                health = results[(name, "/healthz")]
                ratios = [r.p99 / h.p99 for r, h in zip(rows, health, strict=True)]
                print(
                    f"| {label} | {name} | {spread([r.p50 for r in rows], '.1f')} | "
                    f"{spread([r.p99 for r in rows], '.1f')} | "
                    f"{spread([r.rps for r in rows], '.0f')} | "
                    + ("—" if label == "/healthz" else spread(ratios, ".1f"))
                    + f" | {spread([r.cpu_app + r.cpu_db for r in rows], '.1f')}"
                    f" | {spread([100 * r.busiest_worker for r in rows], '.0f')} % |"
                )
        print(
            f"\n{args.rounds} interleaved rounds; {args.connections} keep-alive connections "
            f"(opened {args.warm}); "
            f"gunicorn {args.workers} workers x the config's threads; "
            f">= {args.seconds:g} s and >= {args.min_requests} requests per measurement."
        )
        json.dump(
            {f"{n}|{label}": [r.__dict__ for r in rs] for (n, label), rs in results.items()},
            open(work / "results.json", "w"),  # noqa: SIM115
        )
        print(f"raw results and gunicorn logs: {work}", file=sys.stderr)
    finally:
        for server in servers.values():
            server.stop()
        jwks.stop()
        shutil.rmtree(work / "static-before", ignore_errors=True)
        shutil.rmtree(work / "static-after", ignore_errors=True)


if __name__ == "__main__":
    main()
