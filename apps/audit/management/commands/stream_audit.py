"""``manage.py stream_audit``: the audit stream from a terminal (docs/audit-stream.md).

    stream_audit --status                    one line per destination; exit 1 if one fails
    stream_audit --send [--destination NAME] send now, in this process (ignores the backoff)
    stream_audit --move-cursor NAME --to SEQ re-send from SEQ+1 (or skip to SEQ); audited

``--move-cursor`` is for a SIEM that lost what it had (move back: everything after SEQ is
sent again, as repeats with the same seq) or a new destination that should not receive the
past (move to the head). It takes the destination's lease, so no sender runs meanwhile, and
writes ``audit.stream_cursor_moved`` with the old and new cursor, the OS user and host.
Bad arguments exit 2 with one line.
"""

from __future__ import annotations

import getpass
import socket
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from apps.audit.management.cli import OneLineErrorsMixin, usage_error
from apps.audit.stream import config, sender, status


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return "unknown"


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class Command(OneLineErrorsMixin, BaseCommand):
    help = "Show the audit stream's destinations, send now, or move a destination's cursor."

    def add_arguments(self, parser: CommandParser) -> None:
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--status", action="store_true", help="the default")
        mode.add_argument("--send", action="store_true", help="send now, in this process")
        mode.add_argument("--move-cursor", metavar="NAME", help="a destination's name")
        parser.add_argument("--destination", metavar="NAME", help="with --send: only this one")
        parser.add_argument("--to", type=int, metavar="SEQ", help="with --move-cursor")

    def handle(self, *args: Any, **options: Any) -> None:
        names = [d.name for d in config.destinations()]
        if options["move_cursor"]:
            self._move(options["move_cursor"], options["to"], names)
        elif options["send"]:
            self._send(options["destination"], names)
        else:
            if options["destination"] or options["to"] is not None:
                raise usage_error("--destination goes with --send, --to with --move-cursor")
            self._status()

    def _status(self) -> None:
        rows = status.statuses()
        if not rows:
            self.stdout.write("audit stream: no destination (AUDIT_STREAM is empty)")
            return
        for row in rows:
            success = row.last_success_at.isoformat() if row.last_success_at else "never"
            line = (
                f"{row.state:<18} {row.name}  cursor #{row.cursor} of #{row.head}, "
                f"lag {row.lag_entries} entries / {_age(row.lag_seconds)}, "
                f"last success {success}"
            )
            if not row.healthy and row.last_error:
                retry = row.next_attempt_at.isoformat() if row.next_attempt_at else "now"
                line += f", last error: {row.last_error} (next attempt {retry})"
            self.stdout.write(line)
        if any(not r.healthy for r in rows if r.configured):
            sys.exit(1)

    def _send(self, only: str | None, names: list[str]) -> None:
        if only is not None and only not in names:
            raise usage_error(f"--destination {only!r} is not in AUDIT_STREAM")
        failed = 0
        for name in [only] if only else names:
            result = sender.pump(name, force=True)
            line = f"{name}: {result.outcome}, {result.sent} sent, cursor #{result.cursor}"
            if result.error:
                failed += 1
                line += f": {result.error}"
            self.stdout.write(line)
        if failed:
            raise CommandError(f"{failed} destination(s) failed", returncode=1)

    def _move(self, name: str, to: int | None, names: list[str]) -> None:
        if name not in names:
            raise usage_error(f"--move-cursor {name!r} is not in AUDIT_STREAM")
        head = sender.head_seq()
        if to is None or not 0 <= to <= head:
            raise usage_error(f"--to must be a seq from 0 to the head, #{head}")
        try:
            old = sender.move_cursor(
                name,
                to=to,
                details={"os_user": _os_user(), "host": socket.gethostname()},
                now=timezone.now(),
            )
        except sender.Busy as exc:
            raise CommandError(str(exc), returncode=1) from None
        self.stdout.write(f"{name}: cursor moved from #{old} to #{to}")
