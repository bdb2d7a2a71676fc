"""Benchmark: export 1,000,000 audit entries to CSV and JSON Lines, against a COPY floor.

    psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE jitportal_bench"
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/jitportal_bench \\
        .venv/bin/python bench/audit_export.py [--rows 1000000] [--reload]

The database name must contain "bench": loading TRUNCATEs the audit table. The script
migrates the database, loads ``--rows`` chained entries (hashed in Python exactly as
``record()`` does, then streamed in with psycopg's COPY) unless the table already holds a
valid chain of that size, then measures, each in a fresh child process so peak RSS belongs
to that measurement alone:

* ``copy``  - ``COPY (SELECT <export columns> ... ORDER BY seq) TO STDOUT (FORMAT csv)``: the floor
* ``csv``   - ``export.entries`` -> ``export.chunks(rows, "csv")`` -> bytes, as the view/command
* ``jsonl`` - the same with ``"jsonl"``
* ``verify``- ``chain.verify(export.entries(...))``, what ``manage.py verify_audit`` runs

and finally the latency to the first row with and without a transaction around the cursor.

Output goes to /dev/null; RSS (current and peak) is sampled every 100,000 rows.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "jitportal.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from apps.audit import chain, export  # noqa: E402
from apps.audit.models import AuditAction, AuditEvent  # noqa: E402

SAMPLE_EVERY = 100_000
TABLE = AuditEvent._meta.db_table
START = datetime(2026, 1, 1, tzinfo=UTC)

# --- loading ---------------------------------------------------------------------------

_ACTIONS = [
    (AuditAction.FIELD_CHANGED, 30),
    (AuditAction.REQUEST_SUBMITTED, 10),
    (AuditAction.REQUEST_APPROVED, 8),
    (AuditAction.GRANT_ACTIVATED, 8),
    (AuditAction.GRANT_EXPIRED, 7),
    (AuditAction.GRANT_REVOKED, 2),
    (AuditAction.GRANT_ENFORCED, 10),
    (AuditAction.ZERO_POLICY_WRITTEN, 10),
    (AuditAction.ASSERTION_REJECTED, 5),
    (AuditAction.USER_GROUPS_CHANGED, 3),
    (AuditAction.GRANT_BREAK_GLASS, 1),
]
_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


def generate(count: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    """``count`` chained entries of realistic shape and size (~700 bytes of text each)."""
    rnd = random.Random(seed)
    actions = [a for a, w in _ACTIONS for _ in range(w)]
    slugs = [f"res-{n:02d}" for n in range(30)]
    prev = chain.GENESIS
    for seq in range(1, count + 1):
        action = rnd.choice(actions)
        user = rnd.randrange(1, 501)
        system = action in (AuditAction.GRANT_EXPIRED, AuditAction.ZERO_POLICY_WRITTEN)
        email = "zoë@example.com" if user == 1 else f"user{user}@example.com"
        slug = rnd.choice(slugs)
        when = START + timedelta(seconds=30 * seq, microseconds=rnd.randrange(1_000_000))
        window = {
            "not_before": when.isoformat(),
            "expires_at": (when + timedelta(hours=1)).isoformat(),
        }
        details: dict[str, Any]
        if action == AuditAction.FIELD_CHANGED:
            details = {
                "auditlog_entry": seq,
                "operation": "update",
                "changes": {
                    "state": ["pending", "approved"],
                    "decided_at": ["None", when.isoformat()],
                },
            }
        elif action == AuditAction.ASSERTION_REJECTED:
            details = {"reason": "expired", "message": "The assertion has expired.", "path": "/"}
        else:
            details = {
                "email": email,
                "reason": "=investigating INC-1234 🚀" if seq % 1000 == 0 else "INC-1234 on call",
                **window,
            }
        fields: dict[str, Any] = {
            "seq": seq,
            "created_at": when,
            "actor_id": None if system else user,
            "actor_label": "system" if system else email,
            "action": str(action),
            "target_type": "access.grant",
            "target_id": str(seq // 3),
            "target_repr": f"{email} → Resource {slug}",
            "resource_slug": slug,
            "request_id": uuid.UUID(int=rnd.getrandbits(128)).hex,
            "ip": None if system else f"10.{user // 256}.{user % 256}.{seq % 250 + 1}",
            "user_agent": "" if system else _UA,
            "assertion_jti": "" if system else uuid.UUID(int=rnd.getrandbits(128)).hex,
            "assertion_sid": "" if system else f"sid-{user}",
            "details": details,
            "prev_hash": prev,
        }
        fields["hash"] = prev = chain.entry_hash(fields)
        yield fields


def load(count: int) -> float:
    """TRUNCATE the trail and COPY ``count`` generated entries in; returns seconds."""
    columns = list(export.EXPORT_COLUMNS)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {TABLE} RESTART IDENTITY")
        raw = cursor.cursor  # the psycopg cursor, for COPY
        with raw.copy(f"COPY {TABLE} ({', '.join(columns)}) FROM STDIN") as copy:
            for n, fields in enumerate(generate(count), start=1):
                fields["details"] = json.dumps(fields["details"], ensure_ascii=False)
                copy.write_row([fields[c] for c in columns])
                if n % 250_000 == 0:
                    print(
                        f"  loaded {n:,} rows ({time.perf_counter() - started:.0f} s)", flush=True
                    )
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {TABLE}")
    return time.perf_counter() - started


# --- measuring (in a child process) ----------------------------------------------------


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def peak_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


class Sampler:
    def __init__(self) -> None:
        self.rows = 0
        self.samples: dict[int, tuple[int, int]] = {}

    def tick(self, rows: int) -> None:
        self.rows = rows
        if rows % SAMPLE_EVERY == 0:
            self.samples[rows] = (rss_kib(), peak_kib())

    def count(self, rows: Iterable[Any]) -> Iterator[Any]:
        for n, row in enumerate(rows, start=1):
            self.tick(n)
            yield row


def drain(pieces: Iterable[bytes]) -> int:
    size = 0
    with open(os.devnull, "wb") as sink:
        for piece in pieces:
            size += len(piece)
            sink.write(piece)
    return size


def measure_copy(sampler: Sampler) -> int:
    columns = ", ".join(export.EXPORT_COLUMNS)
    # Constants only: the model's table and column names.
    query = f"COPY (SELECT {columns} FROM {TABLE} ORDER BY seq) TO STDOUT (FORMAT csv, HEADER)"  # noqa: S608
    size = 0
    lines = 0  # the header and one line per row: no newlines inside the generated cells
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(query) as copy,
        open(os.devnull, "wb") as sink,
    ):
        for data in copy:
            size += len(data)
            sink.write(data)
            before, lines = lines, lines + bytes(data).count(b"\n")
            if (lines - 1) // SAMPLE_EVERY > max(before - 1, 0) // SAMPLE_EVERY:
                sampler.samples[(lines - 1) // SAMPLE_EVERY * SAMPLE_EVERY] = (
                    rss_kib(),
                    peak_kib(),
                )
    sampler.rows = lines - 1
    return size


def measure_export(fmt: str) -> Callable[[Sampler], int]:
    def run(sampler: Sampler) -> int:
        rows = sampler.count(export.entries(AuditEvent.objects.all()))
        return drain(export.encoded(export.chunks(rows, fmt)))

    return run


def measure_verify(sampler: Sampler) -> int:
    result = chain.verify(sampler.count(export.entries(AuditEvent.objects.all())))
    if not result.ok:
        raise SystemExit(f"chain broken at #{result.broken_seq}: {result.problem}")
    return 0


MODES: dict[str, Callable[[Sampler], int]] = {
    "copy": measure_copy,
    "csv": measure_export("csv"),
    "jsonl": measure_export("jsonl"),
    "verify": measure_verify,
}


def child(mode: str) -> None:
    sampler = Sampler()
    base = rss_kib()
    cpu_before = time.process_time()
    started = time.perf_counter()
    size = MODES[mode](sampler)
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu_before
    print(
        json.dumps(
            {
                "mode": mode,
                "rows": sampler.rows,
                "seconds": seconds,
                "cpu_seconds": cpu,
                "bytes": size,
                "rss_start_kib": base,
                "samples": sampler.samples,
                "peak_kib": peak_kib(),
            }
        )
    )


# --- driver ----------------------------------------------------------------------------


def chain_size() -> tuple[int, int]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*), coalesce(max(seq), 0) FROM {TABLE}")  # noqa: S608
        count, top = cursor.fetchone()
    return int(count), int(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reload", action="store_true", help="load even if the table fits")
    parser.add_argument("--modes", default="copy,csv,jsonl,verify")
    parser.add_argument("--child", choices=sorted(MODES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return

    settings = connection.settings_dict
    if connection.vendor != "postgresql" or "bench" not in settings["NAME"]:
        raise SystemExit(
            "Point DATABASE_URL at a PostgreSQL database whose name contains 'bench' "
            "(the audit table is truncated)."
        )
    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        version = cursor.fetchone()[0].split(" on ")[0]
    print(f"{version}; Python {sys.version.split()[0]}; {os.cpu_count()} CPUs")
    if args.reload or chain_size() != (args.rows, args.rows):
        print(f"loading {args.rows:,} chained rows ...", flush=True)
        seconds = load(args.rows)
        print(f"loaded in {seconds:.1f} s ({args.rows / seconds:,.0f} rows/s)")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT pg_size_pretty(pg_total_relation_size('{TABLE}'))")
        print(f"table size: {cursor.fetchone()[0]}")
    connection.close()

    results = []
    load_average = os.getloadavg()[0]
    for mode in args.modes.split(","):
        done = subprocess.run(
            [sys.executable, __file__, "--child", mode],
            check=True,
            capture_output=True,
            text=True,
            env=os.environ,
        )
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    report(results, load_average)
    first_row_latency()


def first_row_latency() -> None:
    """Outside a transaction Django declares the server-side cursor WITH HOLD, and
    PostgreSQL materialises the whole result before the first row; inside one it streams."""

    def first() -> float:
        started = time.perf_counter()
        rows = export.entries(AuditEvent.objects.all())
        next(rows)
        seconds = time.perf_counter() - started
        rows.close()
        return seconds

    held = first()
    with transaction.atomic():
        streamed = first()
    print(
        f"\nfirst row after {held:.2f} s in autocommit (WITH HOLD cursor, as the view and "
        f"command run), {streamed:.2f} s inside a transaction"
    )


def report(results: list[dict[str, Any]], load_average: float) -> None:
    floor = next((r for r in results if r["mode"] == "copy"), None)
    print(f"\nload average before measuring: {load_average:.1f} (1 min)\n")
    print(
        "| mode | rows | wall s | rows/s | x COPY | client CPU s | MB out"
        " | RSS start | RSS @100k | RSS @end | peak RSS @100k | peak RSS @end |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        samples = {int(k): v for k, v in r["samples"].items()}
        first = samples.get(SAMPLE_EVERY, (0, 0))
        last = samples[max(samples)] if samples else (0, 0)
        ratio = f"{r['seconds'] / floor['seconds']:.1f}" if floor else "-"
        cells = [
            r["mode"],
            f"{r['rows']:,}",
            f"{r['seconds']:.1f}",
            f"{r['rows'] / r['seconds']:,.0f}",
            ratio,
            f"{r['cpu_seconds']:.1f}",
            f"{r['bytes'] / 1e6:,.0f}",
            *(f"{kib / 1024:.0f} MiB" for kib in (r["rss_start_kib"], first[0], last[0])),
            f"{first[1] / 1024:.0f} MiB",
            f"{r['peak_kib'] / 1024:.0f} MiB",
        ]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
