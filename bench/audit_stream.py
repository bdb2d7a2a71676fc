"""Benchmark: the audit stream (issue #22) against receivers in processes of their own.

    .venv/bin/python bench/audit_stream.py \\
        --database-url postgres://postgres@127.0.0.1:5432/stream_bench \\
        --broker-url redis://127.0.0.1:6379/7 [--rows 100000] [--rounds 3] \\
        [--events 300] [--rate 10] [--outage 10]

The database named in ``--database-url`` is DROPPED and recreated (a scratch name containing
"bench"). Three measurements:

1. **Backlog drain vs the JSONL export, side by side.** ``--rows`` chained entries are
   loaded (``bench/audit_export.py``'s generator). Each round runs, in rotating order and
   each in a fresh child process: ``export-jsonl`` (what ``export_audit --format jsonl``
   streams, to /dev/null), ``drain-https`` (a destination at cursor 0 pumped until it is
   caught up, to ``devtools.siem``'s HTTPS receiver with a test CA, in its own process) and
   ``drain-syslog`` (the same over syslog+tcp). Target: drain rate >= 0.5x the export's,
   in the same round. The drain's receivers answer first and check every line after the
   run, as a SIEM that queues before it parses; ``--strict-receivers`` makes them check
   each line before answering (then the Python stand-in's parsing is what is measured).
2. **Event -> receiver latency while healthy.** A real Celery worker (Redis) streams to an
   HTTPS and a syslog receiver; ``--events`` audited commits are made ``--rate`` per second
   by this process (each its own transaction: the commit hook nudges the worker). Latency is
   the receiver's first arrival minus the commit, per seq. Target: p95 <= 5 s.
3. **An outage**: both receivers go down for ``--outage`` seconds while events keep
   coming, then come back. Target: nothing lost, nothing reordered (first arrivals run
   1, 2, 3, ... without a gap, every seq up to the head arrives). ``--skip-live`` leaves
   out 2 and 3, ``--skip-drain`` leaves out 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
for _n, _arg in enumerate(sys.argv):  # before django.setup(): settings read these
    if _arg == "--broker-url" and _n + 1 < len(sys.argv):
        os.environ["CELERY_BROKER_URL"] = sys.argv[_n + 1]
os.environ.setdefault("ZERO_SYNC_ENABLED", "false")

import audit_export  # noqa: E402  (sets up Django on --database-url)
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from apps.access.actions import AccessAction  # noqa: E402
from apps.audit import export  # noqa: E402
from apps.audit.models import AuditEvent, StreamDestination  # noqa: E402
from apps.audit.services import record_now  # noqa: E402
from apps.audit.stream import sender  # noqa: E402
from tests.support.tls import make_ca  # noqa: E402

TOKEN = "bench-token"
# The drain's receivers answer first and check every line after the run (``stats``), as a
# SIEM that queues before it parses; --strict-receivers checks each line before answering.
DEFER = "--strict-receivers" not in sys.argv
CA_DIR = Path(tempfile.mkdtemp(prefix="stream-bench-ca-"))
CA = make_ca(CA_DIR)


class Receiver:
    """``python -m devtools.siem`` in a process of its own, driven over stdin/stdout."""

    def __init__(self, kind: str, *, tls: bool, defer_checks: bool = False) -> None:
        argv = [sys.executable, "-m", "devtools.siem", kind, "--token", TOKEN]
        if defer_checks:
            argv.append("--defer-checks")
        if tls:
            argv += ["--tls", str(CA.cert_file), str(CA.key_file)]
        self.process = subprocess.Popen(
            argv, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        ready = self.process.stdout.readline().split()
        self.url = ready[1]

    def ask(self, command: str) -> Any:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.ask("quit")
        self.process.wait(timeout=10)


def configure(receivers: list[Receiver]) -> None:
    settings.AUDIT_STREAM = [r.url for r in receivers]
    settings.AUDIT_STREAM_TOKEN = TOKEN
    settings.AUDIT_STREAM_CA_FILE = str(CA.ca_file)
    settings.PORTAL_URL = "https://jit.example.com"


# --- 1. drain vs export (child processes) ------------------------------------------------------


def child_export() -> dict[str, Any]:
    cpu = time.process_time()
    started = time.perf_counter()
    size = rows = 0
    with open(os.devnull, "wb") as sink:
        for piece in export.encoded(
            export.chunks(export.entries(AuditEvent.objects.all()), "jsonl")
        ):
            sink.write(piece)
            size += len(piece)
            rows += piece.count(b"\n")
    return {
        "rows": rows,
        "seconds": time.perf_counter() - started,
        "bytes": size,
        "cpu": time.process_time() - cpu,
        "receiver_cpu": 0.0,
    }


def child_drain(kind: str) -> dict[str, Any]:
    receiver = Receiver(
        "http" if kind == "https" else "syslog", tls=kind == "https", defer_checks=DEFER
    )
    try:
        configure([receiver])
        (destination,) = sender.destination_rows()
        StreamDestination.objects.filter(name=destination).update(cursor=0, next_attempt_at=None)
        head = sender.head_seq()
        cpu = time.process_time()
        started = time.perf_counter()
        while True:
            result = sender.pump(destination, force=True, run_seconds=3600)
            if result.outcome == "caught_up" or result.outcome == "failed":
                break
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu
        stats = receiver.ask("stats")
    finally:
        receiver.close()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "cpu": cpu,
        "receiver_cpu": children.ru_utime + children.ru_stime,
        "rows": head,
        "seconds": seconds,
        "outcome": result.outcome,
        "error": result.error,
        "received": stats["received"],
        "unique": stats["unique"],
        "in_order": stats["in_order"],
        "receiver_errors": stats["errors"],
    }


MODES = {
    "export-jsonl": child_export,
    "drain-https": lambda: child_drain("https"),
    "drain-syslog": lambda: child_drain("syslog"),
}


def run_child(mode: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", mode, *_passthrough()],
        check=True, capture_output=True, text=True, env=os.environ,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def _passthrough() -> list[str]:
    out = []
    for flag in ("--database-url", "--broker-url"):
        if flag in sys.argv:
            out += [flag, sys.argv[sys.argv.index(flag) + 1]]
    if not DEFER:
        out.append("--strict-receivers")
    return out


def spread(values: list[float], fmt: str = "{:.2f}") -> str:
    low, mid, high = (fmt.format(v) for v in (min(values), statistics.median(values), max(values)))
    return f"{mid} ({low}-{high})"


def drain_phase(rounds: int) -> None:
    modes = list(MODES)
    results: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
    for n in range(rounds):
        order = modes[n % len(modes) :] + modes[: n % len(modes)]
        load = os.getloadavg()[0]
        for mode in order:
            results[mode].append(run_child(mode))
        line = ", ".join(
            f"{m} {results[m][-1]['rows'] / results[m][-1]['seconds']:,.0f} rows/s" for m in modes
        )
        print(f"round {n + 1} (load {load:.1f}): {line}", flush=True)
    base = results["export-jsonl"]
    print(
        "\n| mode | rows | wall s | rows/s | x export (same round) | portal CPU s | "
        "receiver CPU s | delivered in order |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for mode, runs in results.items():
        ratios = [
            (r["rows"] / r["seconds"]) / (b["rows"] / b["seconds"])
            for b, r in zip(base, runs, strict=True)
        ]
        delivered = (
            "-"
            if mode == "export-jsonl"
            else ", ".join(
                f"{r['unique']:,}/{r['rows']:,} {'yes' if r['in_order'] else 'NO'}" for r in runs
            )
        )
        print(
            f"| {mode} | {runs[0]['rows']:,} | {spread([r['seconds'] for r in runs], '{:.1f}')} | "
            f"{spread([r['rows'] / r['seconds'] for r in runs], '{:,.0f}')} | "
            f"{spread(ratios)} | {spread([r['cpu'] for r in runs], '{:.1f}')} | "
            f"{spread([r['receiver_cpu'] for r in runs], '{:.1f}')} | {delivered} |"
        )


# --- 2 and 3: latency and an outage, through a real worker --------------------------------------


def worker_env(receivers: list[Receiver]) -> dict[str, str]:
    from tests.support.celery_worker import database_url

    return {
        "DEBUG": "true",
        "LOG_FORMAT": "text",
        "LOG_LEVEL": "WARNING",
        "DATABASE_URL": database_url(connection.settings_dict),
        "CELERY_BROKER_URL": os.environ["CELERY_BROKER_URL"],
        "ZERO_SYNC_ENABLED": "false",
        "PORTAL_URL": "https://jit.example.com",
        "AUDIT_STREAM": ",".join(r.url for r in receivers),
        "AUDIT_STREAM_TOKEN": TOKEN,
        "AUDIT_STREAM_CA_FILE": str(CA.ca_file),
        "AUDIT_STREAM_RETRY_BASE_SECONDS": "1",
        "AUDIT_STREAM_RETRY_MAX_SECONDS": "5",
    }


def write_events(count: int, rate: float) -> dict[int, float]:
    """``count`` audited commits, ``rate`` per second; seq -> commit time (Unix seconds)."""
    committed = {}
    for n in range(count):
        due = time.monotonic() + 1 / rate
        event = record_now(AccessAction.REPORT_VIEWED, details={"bench": n})
        committed[event.seq] = time.time()
        time.sleep(max(0.0, due - time.monotonic()))
    return committed


def wait_caught_up(receivers: list[Receiver], timeout: float = 120) -> bool:
    head = sender.head_seq()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all((r.ask("stats")["max_seq"] or 0) >= head for r in receivers):
            return True
        time.sleep(0.5)
    return False


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def live_phase(events: int, rate: float, outage: float) -> None:
    from jitportal.celery import app
    from tests.support.celery_worker import CeleryWorker, purge_broker

    purge_broker(os.environ["CELERY_BROKER_URL"])
    app.conf.broker_url = os.environ["CELERY_BROKER_URL"]
    receivers = [Receiver("http", tls=True), Receiver("syslog", tls=False)]
    configure(receivers)
    # Start both at the head: the backlog was phase 1's business.
    for name in sender.destination_rows():
        StreamDestination.objects.filter(name=name).update(cursor=sender.head_seq())
    worker = CeleryWorker(worker_env(receivers), pool="prefork", concurrency=2).start()
    try:
        committed = write_events(events, rate)
        assert wait_caught_up(receivers), "the receivers never caught up"
        print(f"\nlatency, {events} events at {rate:g}/s, healthy:")
        print("| destination | p50 ms | p95 ms | max ms | target p95 <= 5000 ms |")
        print("|---|---:|---:|---:|---|")
        for receiver in receivers:
            times = {int(k): v for k, v in receiver.ask("times").items()}
            lags = [(times[s] - t) * 1000 for s, t in committed.items()]
            p95 = pct(lags, 0.95)
            print(
                f"| {receiver.url.split('://')[0]} | {pct(lags, 0.5):.0f} | {p95:.0f} | "
                f"{max(lags):.0f} | {'met' if p95 <= 5000 else 'MISSED'} |"
            )
        first = sender.head_seq() + 1
        for receiver in receivers:
            receiver.ask("clear")
        half = max(1, int(outage * rate))
        write_events(half // 2, rate)
        for receiver in receivers:
            receiver.ask("down")
        write_events(half, rate)
        for receiver in receivers:
            receiver.ask("up")
        write_events(half // 2, rate)
        caught = wait_caught_up(receivers, timeout=180)
        head = sender.head_seq()
        print(f"\noutage of {outage:g} s in the middle of {half * 2} events (#{first}-#{head}):")
        print("| destination | caught up | entries | lost | first arrivals in order | repeats |")
        print("|---|---|---:|---:|---|---:|")
        for receiver in receivers:
            stats = receiver.ask(f"stats {first} {head}")
            print(
                f"| {receiver.url.split('://')[0]} | {caught} | {head - first + 1} | "
                f"{stats['missing']} | {stats['in_order']} | "
                f"{stats['received'] - stats['unique']} |"
            )
    finally:
        worker.stop()
        for receiver in receivers:
            receiver.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--database-url")
    parser.add_argument("--broker-url", default="redis://127.0.0.1:6379/7")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--outage", type=float, default=10.0)
    parser.add_argument("--skip-drain", action="store_true")
    parser.add_argument("--strict-receivers", action="store_true")
    parser.add_argument("--skip-live", action="store_true", help="no latency/outage phase")
    parser.add_argument("--child", choices=sorted(MODES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(MODES[args.child]()))
        return
    if not args.database_url:
        raise SystemExit("--database-url is required (a scratch database: it is dropped)")
    connection.close()
    audit_export.recreate_database(args.database_url)
    call_command("migrate", verbosity=0)
    print(f"Python {sys.version.split()[0]}; {os.cpu_count()} CPUs; load {os.getloadavg()[0]:.1f}")
    print(f"loading {args.rows:,} chained rows ...", flush=True)
    seconds = audit_export.load(args.rows)
    print(f"loaded in {seconds:.1f} s", flush=True)
    connection.close()
    if not args.skip_drain:
        drain_phase(args.rounds)
    if not args.skip_live:
        live_phase(args.events, args.rate, args.outage)


if __name__ == "__main__":
    main()
