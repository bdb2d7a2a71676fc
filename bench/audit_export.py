"""Benchmark: export 1,000,000 audit entries to CSV and JSON Lines, before and after COPY.

    .venv/bin/python bench/audit_export.py \\
        --database-url postgres://postgres@127.0.0.1:5432/export_bench [--rows N] [--rounds 3]

The database named in ``--database-url`` is DROPPED and recreated (give it a scratch name
containing "bench"). The script migrates it, loads ``--rows`` chained entries (hashed in
Python exactly as ``record()`` does, streamed in with psycopg's COPY), then runs
``--rounds`` interleaved rounds (the order rotates each round) of these measurements, each
in a fresh child process so its peak RSS is its own:

* ``floor``       ``COPY (SELECT <export columns> ... ORDER BY seq) TO STDOUT (FORMAT csv)``
* ``csv-python``  the Python writers: ``export.entries`` -> dicts -> ``csv_chunks`` -> bytes
                  (what every export ran before; what SQLite still runs)
* ``csv-copy``    ``export.encoded(export.chunks(export.entries(qs), "csv"))`` as the view
                  and admin run it: COPY formatted in SQL (``export_copy``)
* ``jsonl-python``, ``jsonl-copy``  the same for JSON Lines

Output goes to /dev/null; RSS (current and peak) is sampled every 100,000 rows. The table
prints the median of the rounds with the min-max spread; "x floor" is the floor's time
divided by the mode's time in the same round (1.0 = as fast as plain COPY).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "jitportal.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")
for _n, _arg in enumerate(sys.argv):  # before django.setup(): settings read DATABASE_URL
    if _arg == "--database-url" and _n + 1 < len(sys.argv):
        os.environ["DATABASE_URL"] = sys.argv[_n + 1]

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from apps.access.actions import AccessAction  # noqa: E402
from apps.accounts.actions import AccountAction  # noqa: E402
from apps.audit import chain, export  # noqa: E402
from apps.audit.models import AuditAction, AuditEvent  # noqa: E402
from apps.pomerium.actions import ZeroAction  # noqa: E402

SAMPLE_EVERY = 100_000
TABLE = AuditEvent._meta.db_table
START = datetime(2026, 1, 1, tzinfo=UTC)

# --- loading ---------------------------------------------------------------------------

_ACTIONS = [
    (AuditAction.FIELD_CHANGED, 30),
    (AccessAction.REQUEST_SUBMITTED, 10),
    (AccessAction.REQUEST_APPROVED, 8),
    (AccessAction.GRANT_ACTIVATED, 8),
    (AccessAction.GRANT_EXPIRED, 7),
    (AccessAction.GRANT_REVOKED, 2),
    (AccessAction.GRANT_ENFORCED, 10),
    (ZeroAction.ZERO_POLICY_WRITTEN, 10),
    (AccountAction.ASSERTION_REJECTED, 5),
    (AccountAction.USER_GROUPS_CHANGED, 3),
    (AccessAction.GRANT_BREAK_GLASS, 1),
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
        system = action in (AccessAction.GRANT_EXPIRED, ZeroAction.ZERO_POLICY_WRITTEN)
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
        elif action == AccountAction.ASSERTION_REJECTED:
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
        fields["upstream_request_id"] = ""  # optional: not hashed while empty
        yield fields


def load(count: int) -> float:
    """TRUNCATE the trail and COPY ``count`` generated entries in; returns seconds."""
    columns = [*export.EXPORT_COLUMNS, "details_text"]
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {TABLE} RESTART IDENTITY")
        raw = cursor.cursor  # the psycopg cursor, for COPY
        with raw.copy(f"COPY {TABLE} ({', '.join(columns)}) FROM STDIN") as copy:
            for n, fields in enumerate(generate(count), start=1):
                fields["details_text"] = chain.dumps(fields["details"])  # as record() stores it
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
        self.first_byte = 0.0
        self.samples: dict[int, tuple[int, int]] = {}

    def tick(self, rows: int) -> None:
        self.rows = rows
        if rows % SAMPLE_EVERY == 0:
            self.samples[rows] = (rss_kib(), peak_kib())

    def count(self, rows: Iterable[Any]) -> Iterator[Any]:
        for n, row in enumerate(rows, start=1):
            self.tick(n)
            yield row


def measure_floor(sampler: Sampler) -> int:
    columns = ", ".join(export.EXPORT_COLUMNS)
    # Constants only: the model's table and column names.
    query = f"COPY (SELECT {columns} FROM {TABLE} ORDER BY seq) TO STDOUT (FORMAT csv, HEADER)"  # noqa: S608
    with connection.cursor() as cursor, cursor.cursor.copy(query) as copy:
        return drain_lines(sampler, (bytes(data) for data in copy))


def drain_lines(sampler: Sampler, pieces: Iterable[bytes], *, header: int = 1) -> int:
    """Write ``pieces`` to /dev/null, counting rows by line ends (the generated cells hold
    no newlines) and sampling RSS each time another SAMPLE_EVERY rows have passed."""
    size = 0
    lines = 0
    with open(os.devnull, "wb") as sink:
        for piece in pieces:
            if not size:
                sampler.first_byte = time.perf_counter()
            size += len(piece)
            sink.write(piece)
            before, lines = lines, lines + piece.count(b"\n")
            mark = (lines - header) // SAMPLE_EVERY
            if mark > 0 and mark > (before - header) // SAMPLE_EVERY:
                sampler.samples[mark * SAMPLE_EVERY] = (
                    rss_kib(),
                    peak_kib(),
                )
    sampler.rows = lines - header
    return size


def measure_python(fmt: str) -> Callable[[Sampler], int]:
    """Before: the Python writers (a plain iterator of dicts never takes the COPY path)."""

    def run(sampler: Sampler) -> int:
        rows = sampler.count(export.entries(AuditEvent.objects.all()))
        return drain(sampler, export.encoded(export.chunks(rows, fmt)))

    return run


def measure_copy(fmt: str) -> Callable[[Sampler], int]:
    """After: exactly what the view streams on PostgreSQL."""

    def run(sampler: Sampler) -> int:
        pieces = export.chunks(export.entries(AuditEvent.objects.all()), fmt)
        assert isinstance(pieces, export.CopyChunks)
        return drain_lines(sampler, export.encoded(pieces), header=1 if fmt == "csv" else 0)

    return run


def drain(sampler: Sampler, pieces: Iterable[bytes]) -> int:
    size = 0
    with open(os.devnull, "wb") as sink:
        for piece in pieces:
            if not size:
                sampler.first_byte = time.perf_counter()
            size += len(piece)
            sink.write(piece)
    return size


MODES: dict[str, Callable[[Sampler], int]] = {
    "floor": measure_floor,
    "csv-python": measure_python("csv"),
    "csv-copy": measure_copy("csv"),
    "jsonl-python": measure_python("jsonl"),
    "jsonl-copy": measure_copy("jsonl"),
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
                "first_byte": sampler.first_byte - started,
                "cpu_seconds": cpu,
                "bytes": size,
                "rss_start_kib": base,
                "samples": sampler.samples,
                "peak_kib": peak_kib(),
            }
        )
    )


# --- driver ----------------------------------------------------------------------------


def recreate_database(url: str) -> None:
    """DROP and CREATE the scratch database named in ``url``."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if "bench" not in name:
        raise SystemExit(f"refusing to drop {name!r}: give a scratch name containing 'bench'")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def run_child(mode: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", mode],
        check=True,
        capture_output=True,
        text=True,
        env=os.environ,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--database-url", help="scratch PostgreSQL database (dropped!)")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--child", choices=sorted(MODES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    if not args.database_url:
        raise SystemExit("--database-url is required (a scratch database: it is dropped)")
    connection.close()
    recreate_database(args.database_url)
    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        version = cursor.fetchone()[0].split(" on ")[0]
    print(f"{version}; Python {sys.version.split()[0]}; {os.cpu_count()} CPUs")
    print(f"loading {args.rows:,} chained rows ...", flush=True)
    seconds = load(args.rows)
    print(f"loaded in {seconds:.1f} s ({args.rows / seconds:,.0f} rows/s)")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT pg_size_pretty(pg_total_relation_size('{TABLE}'))")
        print(f"table size: {cursor.fetchone()[0]}")
    connection.close()

    modes = args.modes.split(",")
    results: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
    for n in range(args.rounds):
        order = modes[n % len(modes) :] + modes[: n % len(modes)]
        load_average = os.getloadavg()[0]
        for mode in order:
            results[mode].append(run_child(mode))
        line = ", ".join(f"{m} {results[m][-1]['seconds']:.1f} s" for m in modes)
        print(f"round {n + 1} (load {load_average:.1f}): {line}", flush=True)
    report(results)


def _spread(values: list[float], fmt: str) -> str:
    low, mid, high = (fmt.format(v) for v in (min(values), statistics.median(values), max(values)))
    return f"{mid} ({low}-{high})"


def report(results: dict[str, list[dict[str, Any]]]) -> None:
    floor = results.get("floor")
    print(
        "\n| mode | rows | wall s | x floor (throughput) | client CPU s | first byte s | MB out"
        " | RSS @100k | RSS @end | peak RSS |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for mode, runs in results.items():
        ratios = (
            [f["seconds"] / r["seconds"] for f, r in zip(floor, runs, strict=True)] if floor else []
        )
        first = [int(k) for k in runs[0]["samples"]]
        at_100k = [r["samples"].get(str(SAMPLE_EVERY), [0, 0])[0] / 1024 for r in runs]
        at_end = [r["samples"][str(max(first))][0] / 1024 if first else 0 for r in runs]
        cells = [
            mode,
            f"{runs[0]['rows']:,}",
            _spread([r["seconds"] for r in runs], "{:.1f}"),
            _spread(ratios, "{:.2f}") if ratios else "-",
            _spread([r["cpu_seconds"] for r in runs], "{:.1f}"),
            _spread([r["first_byte"] for r in runs], "{:.2f}"),
            f"{runs[0]['bytes'] / 1e6:,.0f}",
            f"{statistics.median(at_100k):.0f} MiB",
            f"{statistics.median(at_end):.0f} MiB",
            f"{max(r['peak_kib'] for r in runs) / 1024:.0f} MiB",
        ]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
