"""``manage.py verify_audit [--file EXPORT] [--segment | --rows-only]``

Walks the hash chain in seq order, from the database (streamed, flat memory) or from an
export file (``.jsonl`` or ``.csv``, as written by export_audit or the export pages).

* exit 0: ``audit chain intact: N entries, head <hash>``
* exit 1: ``audit chain broken at entry #N: <problem>`` (also for an unreadable line)
* exit 2: bad arguments or a file that cannot be opened

With ``--file`` it needs no database and no production settings (no ``SECRET_KEY``): an
auditor can check an export on any machine with the code.

A filtered export is not a contiguous chain: check it with ``--rows-only`` (each row's own
hash). An unfiltered export that starts mid-chain (``--since`` only) can be checked with
``--segment``, which anchors at the first row's prev_hash.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, NoReturn

from django.core.management.base import BaseCommand, CommandParser

from apps.audit import chain, export
from apps.audit.management.cli import OneLineErrorsMixin, usage_error
from apps.audit.models import AuditEvent
from apps.kit.text import hidden_in


class Command(OneLineErrorsMixin, BaseCommand):
    help = "Verify the audit hash chain in the database or in an export file."
    # Checking a file needs no database and no production settings (jitportal/settings.py
    # ``OFFLINE_COMMAND``): the system checks run only for the database's chain.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--file", metavar="EXPORT", help="an export (.jsonl or .csv)")
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument(
            "--rows-only",
            action="store_true",
            help="check only each row's own hash (filtered exports)",
        )
        mode.add_argument(
            "--segment",
            action="store_true",
            help="check a contiguous export that starts mid-chain, anchored at its first row",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path = options["file"]
        if path is None and (options["rows_only"] or options["segment"]):
            raise usage_error("--rows-only and --segment need --file")
        if path is None:
            self.check()
            rows: Iterator[dict[str, Any]] = export.entries(AuditEvent.objects.all())
            try:
                result = chain.verify(rows)
            finally:
                # A broken chain stops the walk early: close the server-side cursor now,
                # not whenever the generator is garbage-collected (by then its transaction
                # may be gone, and the failed CLOSE would abort whatever transaction is open).
                close = getattr(rows, "close", None)
                if close is not None:
                    close()
            self._report(result, mode="chain")
            return
        suffix = Path(path).suffix.lower()
        if suffix not in (".jsonl", ".ndjson", ".csv"):
            raise usage_error(f"{path}: expected a .jsonl or .csv export")
        try:
            # utf-8-sig: the CSV starts with a byte-order mark; newline="" for csv quoting.
            handle: IO[str] = open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115
        except OSError as exc:
            raise usage_error(f"cannot read {path}: {exc.strerror}") from None
        hidden: list[int] = []
        with handle:
            read = export.read_csv(handle) if suffix == ".csv" else export.read_jsonl(handle)
            rows = _noting_hidden(read, hidden)
            try:
                if options["rows_only"]:
                    self._report(chain.verify_rows(rows), mode="rows")
                elif options["segment"]:
                    first = next(rows, None)
                    if first is None:
                        self._report(chain.verify(()), mode="chain")
                        return
                    result = chain.verify(
                        itertools.chain([first], rows),
                        first_seq=int(first["seq"]),
                        first_prev=first["prev_hash"],
                    )
                    self._report(result, mode="segment", anchor=first["prev_hash"])
                else:
                    self._report(chain.verify(rows), mode="chain")
            except export.ExportFileError as exc:
                self._fail(f"audit export unreadable at {exc}")
            except UnicodeDecodeError:
                self._fail("audit export unreadable: not UTF-8 text")
        if hidden:
            shown = ", ".join(f"#{seq}" for seq in hidden[:20]) + (
                " ..." if len(hidden) > 20 else ""
            )
            self.stdout.write(
                f"note: {len(hidden)} entries carry hidden or direction-changing characters "
                f"({shown}); the file keeps them exactly, so a spreadsheet shows them as "
                "stored. The admin's audit pages show them escaped, as [U+202E]."
            )

    def _report(self, result: chain.VerifyResult, *, mode: str, anchor: str = "") -> None:
        if not result.ok:
            self._fail(f"audit chain broken at entry #{result.broken_seq}: {result.problem}")
        if mode == "rows":
            self.stdout.write(
                f"audit export rows intact: {result.count} entries (each row's own hash; "
                "a filtered export is not a contiguous chain)"
            )
        elif mode == "segment" and result.count:
            last = result.first_seq + result.count - 1
            self.stdout.write(
                f"audit chain segment intact: entries #{result.first_seq} to #{last} "
                f"({result.count} entries) after prev_hash {anchor}, head {result.head}"
            )
        else:
            self.stdout.write(f"audit chain intact: {result.count} entries, head {result.head}")

    def _fail(self, line: str) -> NoReturn:
        self.stderr.write(line)
        sys.exit(1)


def _noting_hidden(rows: Iterator[dict[str, Any]], hidden: list[int]) -> Iterator[dict[str, Any]]:
    """``rows`` unchanged, noting in ``hidden`` the seq of each whose text (details
    included) carries a hidden character (``apps.kit.text``)."""
    for row in rows:
        if hidden_in(list(row.values())) is not None:
            hidden.append(int(row["seq"]))
        yield row
