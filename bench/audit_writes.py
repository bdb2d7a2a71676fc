"""Benchmark of audited writes: ``submit_request`` transactions/s, 8 writers, PostgreSQL.

Each round runs the same work twice, interleaved: with the audit trail as shipped
("audit"), and with the chain writer replaced by a stub that writes nothing and
django-auditlog switched off ("no audit", used only here). Every transaction is one
``submit_request`` by its own user (the service locks the user row, validates, inserts
the request, audits ``request.submitted`` and announces the event after commit), so the
two modes differ only in the audit writes.

Usage, from the root of the checkout to measure::

    .venv/bin/python bench/audit_writes.py \\
        --database-url postgres://postgres@127.0.0.1:5432/h_audit \\
        --broker redis://127.0.0.1:6379/3

Before and after side by side (the same script against an older checkout, alternating)::

    .venv/bin/python bench/side_by_side.py --before dd22bfe --rounds 3 -- \\
        "$PWD/bench/audit_writes.py" --rounds 1

The database named in --database-url is DROPPED and recreated: give it a scratch name.
Redis receives the notification tasks the submissions enqueue (nobody consumes them; the
script deletes that Redis database's keys at the end). Results are printed as Markdown, for
a dated file in bench/results/ (see bench/README.md).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

# The code measured is the checkout it is run from (the current directory), so the same
# script can measure another checkout too (bench/side_by_side.py, or by hand).
REPO = Path.cwd() if (Path.cwd() / "manage.py").exists() else Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MODES = ("audit", "no audit")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/h_audit"),
    )
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/3")
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--per-writer", type=int, default=150, help="transactions per writer")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--label", default="", help="a name for this code in the table")
    parser.add_argument(
        "--threads",
        action="store_true",
        help="writers as threads of this process (one GIL) instead of processes, as gunicorn runs",
    )
    return parser.parse_args()


def recreate_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parts.path.lstrip("/")}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{parts.path.lstrip("/")}"')


@contextmanager
def audit_stubbed() -> Iterator[None]:
    """Replace the chain writer everywhere it was imported by a stub that writes nothing."""
    from apps.audit import services as audit_services

    real = audit_services.record
    patched = [
        module
        for name, module in list(sys.modules.items())
        if name.startswith("apps.") and getattr(module, "record", None) is real
    ]
    for module in patched:
        module.record = lambda *args, **kwargs: None  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for module in patched:
            module.record = real  # type: ignore[attr-defined]


def run_writers(
    writers: list[list[Any]], resource: Any, *, audited: bool = True, threads: bool = False
) -> float:
    """Every writer submits one request per user of its list; returns the wall time.

    Writers are processes forked from this one (as gunicorn's workers are), each with its
    own connection; ``threads`` runs them as threads of this process instead. Without
    audit, django-auditlog's field history is switched off too (it is a context variable),
    so "no audit" is the domain work alone whatever the code registers.
    """
    from auditlog.context import disable_auditlog
    from django.db import connection, connections

    from apps.access import services

    if threads:
        barrier: Any = threading.Barrier(len(writers) + 1)
    else:
        barrier = multiprocessing.get_context("fork").Barrier(len(writers) + 1)
    errors: list[BaseException] = []

    def work(users: list[Any]) -> None:
        try:
            connection.ensure_connection()
            barrier.wait()
            with nullcontext() if audited else disable_auditlog():
                for user in users:
                    services.submit_request(
                        requester=user,
                        resource=resource,
                        duration_minutes=60,
                        justification="Benchmark of audited writes",
                    )
        except BaseException as exc:
            errors.append(exc)
            if not threads:
                raise
        finally:
            connection.close()

    if threads:
        workers: list[Any] = [threading.Thread(target=work, args=(users,)) for users in writers]
    else:
        connections.close_all()  # a forked child must open its own connection
        context = multiprocessing.get_context("fork")
        workers = [context.Process(target=work, args=(users,)) for users in writers]
    for worker in workers:
        worker.start()
    barrier.wait()
    started = time.perf_counter()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    failed = [w.exitcode for w in workers if getattr(w, "exitcode", 0)]
    if failed:
        raise SystemExit(f"{len(failed)} writer process(es) failed")
    return elapsed


def serial_commit_rate(seconds: float = 3.0) -> float:
    """INSERT + COMMIT transactions/s on one connection: the rate at which transactions
    that hold one lock through their COMMIT can follow each other on this disk (each
    waits for its own WAL flush), measured in the same run as the writers."""
    from django.db import connection, transaction

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_commit (id bigserial PRIMARY KEY, v text)")
    done = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("INSERT INTO bench_commit (v) VALUES ('x')")
        done += 1
    return done / (time.perf_counter() - started)


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.0f} ({min(values):.0f}-{max(values):.0f})"


def main() -> None:
    args = parse_args()
    os.environ.update(
        {
            # Production settings, as gunicorn runs them (DEBUG would also log every query).
            "DEBUG": "false",
            "SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
            "ALLOWED_HOSTS": "127.0.0.1",
            "JWKS_ENDPOINT": "http://127.0.0.1:9/unused",
            "POMERIUM_JWT_AUDIENCE": "bench.example",
            "LOG_LEVEL": "WARNING",
            "LOG_FORMAT": "text",
            "DATABASE_URL": args.database_url,
            "CELERY_BROKER_URL": args.broker,
            "ZERO_SYNC_ENABLED": "false",
        }
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "jitportal.settings")
    recreate_database(args.database_url)

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    from apps.access.models import AccessRequest, Resource
    from apps.audit.models import AuditEvent
    from apps.audit.services import event_fields

    call_command("migrate", verbosity=0)
    resource = Resource.objects.create(
        slug="bench",
        name="Bench",
        approver_groups=["approvers"],
        duration_choices=[60],
        max_duration_minutes=480,
    )
    User = get_user_model()
    rates: dict[str, list[float]] = {mode: [] for mode in MODES}
    serial: list[float] = []
    counter = 0

    def users_for_run() -> list[list[Any]]:
        nonlocal counter
        created = []
        for _ in range(args.writers):
            batch = [
                User(username=f"u{counter + i}", email=f"u{counter + i}@example.com")
                for i in range(args.per_writer)
            ]
            counter += args.per_writer
            created.append(User.objects.bulk_create(batch))
        return created

    # Warm up once (connections, code paths), not counted.
    run_writers([users[:5] for users in users_for_run()], resource, threads=args.threads)
    for round_no in range(args.rounds):
        serial.append(serial_commit_rate())
        print(f"round {round_no + 1} serial INSERT+COMMIT: {serial[-1]:7.1f} tx/s", flush=True)
        order = MODES if round_no % 2 == 0 else MODES[::-1]
        for mode in order:
            writers = users_for_run()
            requests_before = AccessRequest.objects.count()
            entries_before = AuditEvent.objects.count()
            if mode == "audit":
                elapsed = run_writers(writers, resource, threads=args.threads)
            else:
                with audit_stubbed():
                    elapsed = run_writers(writers, resource, audited=False, threads=args.threads)
            done = AccessRequest.objects.count() - requests_before
            entries = AuditEvent.objects.count() - entries_before
            expected = args.writers * args.per_writer
            assert done == expected, (mode, done, expected)
            if mode == "audit":
                assert entries >= done, (entries, done)
            else:
                assert entries == 0, entries
            rates[mode].append(done / elapsed)
            print(
                f"round {round_no + 1} {mode:>8}: {done / elapsed:7.1f} tx/s "
                f"({done} tx, {entries} audit rows, {elapsed:.2f} s)",
                flush=True,
            )

    from apps.audit import chain

    verified = chain.verify(event_fields(e) for e in AuditEvent.objects.in_chain_order())
    assert verified.ok, verified
    ratios = [a / b for a, b in zip(rates["audit"], rates["no audit"], strict=True)]
    label = args.label or "this code"
    print()
    print(
        "| code | audited tx/s | no-audit tx/s | ratio | serial commits/s "
        "| chain (verify_audit) |\n"
        f"|---|---|---|---|---|---|\n"
        f"| {label} | {spread(rates['audit'])} | {spread(rates['no audit'])} | "
        f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f}) | "
        f"{spread(serial)} | {verified.count} entries intact |"
    )
    print(
        f"\n{args.writers} writer {'threads' if args.threads else 'processes'} x "
        f"{args.per_writer} transactions, {args.rounds} interleaved rounds; median (min-max)."
    )
    connection.close()
    import redis

    redis.Redis.from_url(args.broker).flushdb()


if __name__ == "__main__":
    main()
