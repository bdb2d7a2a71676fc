"""``manage.py export_audit``: scheduled exports to a SIEM, and access reports.

    export_audit --format csv|jsonl [--since ISO] [--until ISO] [--actor EMAIL]
                 [--resource SLUG] [--action ACTION] [-o FILE]
    export_audit --report access [--resource SLUG] [--at ISO | --between ISO ISO] [-o FILE]

Writes to stdout unless ``-o`` names a file. Rows stream from the database
``export.CHUNK_SIZE`` at a time, so memory stays flat for any number of rows. Bad
arguments (a bad date, an unknown format or action, a file that cannot be written) exit
with status 2 and one line on stderr, before anything is written or audited.

Every run is audited (``audit.exported`` / ``audit.report_viewed``) with actor ``system``:
a command has no verified identity, so the OS user and host are recorded in the details
instead of a name someone could claim.
"""

from __future__ import annotations

import getpass
import re
import socket
from collections.abc import Iterable
from datetime import datetime
from typing import IO, Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from apps.access.models import Resource
from apps.audit import export, reports
from apps.audit.management.cli import OneLineErrorsMixin, usage_error
from apps.audit.models import AuditAction, AuditEvent

_SLUG = re.compile(r"^[-a-zA-Z0-9_]{1,64}$")


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return "unknown"


def _instant(option: str, value: str | None, *, end: bool) -> datetime | None:
    if value is None:
        return None
    try:
        return export.parse_bound(value, end=end)
    except ValueError as exc:
        raise usage_error(f"{option}: {exc}") from None


class Command(OneLineErrorsMixin, BaseCommand):
    help = "Export the audit trail (CSV or JSON Lines) or an access report (CSV)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", dest="fmt", metavar="csv|jsonl")
        parser.add_argument("--since", metavar="ISO", help="inclusive; a date is 00:00 UTC")
        parser.add_argument("--until", metavar="ISO", help="exclusive; a date includes that day")
        parser.add_argument("--actor", metavar="EMAIL", help="actor email, or 'system'")
        parser.add_argument("--resource", metavar="SLUG")
        parser.add_argument("--action", metavar="ACTION", help="e.g. grant.break_glass")
        parser.add_argument("-o", "--output", metavar="FILE", help="default: stdout")
        parser.add_argument("--report", metavar="access", help="print an access report instead")
        parser.add_argument("--at", metavar="ISO", help="report: who had access at this instant")
        parser.add_argument(
            "--between", nargs=2, metavar=("FROM", "UNTIL"), help="report: who had access"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["report"] is not None:
            self._report(options)
        else:
            self._export(options)

    # --- export ---------------------------------------------------------------------

    def _export(self, options: dict[str, Any]) -> None:
        if options["at"] is not None or options["between"] is not None:
            raise usage_error("--at and --between belong to --report access")
        fmt = options["fmt"]
        if fmt not in export.FORMATS:
            if fmt is None:
                raise usage_error("--format is required: csv or jsonl")
            raise usage_error(f"--format {fmt!r}: use csv or jsonl")
        action = options["action"] or ""
        if action and action not in AuditAction.values:
            raise usage_error(f"--action {action!r} is not an audit action, e.g. grant.revoked")
        resource = options["resource"] or ""
        if resource and not _SLUG.match(resource):
            raise usage_error(f"--resource {resource!r} is not a slug")
        try:
            filters = export.ExportFilters(
                since=_instant("--since", options["since"], end=False),
                until=_instant("--until", options["until"], end=True),
                actor=(options["actor"] or "").strip().lower(),
                resource=resource,
                action=action,
            )
        except ValueError as exc:
            raise usage_error(str(exc)) from None
        output = self._open(options["output"])
        try:
            event = export.record_export(
                actor=None,
                fmt=fmt,
                filters=filters.as_details(),
                via="command",
                output=options["output"] or "stdout",
                os_user=_os_user(),
                host=socket.gethostname(),
            )
            rows = export.entries(filters.apply(AuditEvent.objects.all()), upto_seq=event.seq)
            self._write(output, export.chunks(rows, fmt))
        finally:
            if output is not None:
                output.close()

    # --- access report ----------------------------------------------------------------

    def _report(self, options: dict[str, Any]) -> None:
        if options["report"] != "access":
            raise usage_error(f"--report {options['report']!r}: the only report is 'access'")
        for name in ("fmt", "since", "until", "actor", "action"):
            if options[name] is not None and not (name == "fmt" and options[name] == "csv"):
                flag = "--format" if name == "fmt" else f"--{name}"
                raise usage_error(f"{flag} does not apply to --report (it prints CSV)")
        if options["at"] is not None and options["between"] is not None:
            raise usage_error("use --at or --between, not both")
        resource = None
        if options["resource"]:
            resource = Resource.objects.filter(slug=options["resource"]).first()
            if resource is None:
                raise usage_error(f"--resource {options['resource']!r}: no such resource")
        if options["between"] is not None:
            start = _instant("--between", options["between"][0], end=False)
            end = _instant("--between", options["between"][1], end=True)
            assert start is not None and end is not None
            if end <= start:
                raise usage_error("--between: UNTIL must be later than FROM")
            name = "who_had_access"
        elif options["at"] is not None:
            start = _instant("--at", options["at"], end=False)
            assert start is not None
            end, name = None, "who_had_access_at"
        else:
            start, end, name = timezone.now(), None, "who_has_access_now"
        output = self._open(options["output"])
        try:
            if name == "who_had_access":
                assert end is not None
                rows = reports.who_had_access(resource, start, end)
            elif name == "who_had_access_at":
                rows = reports.who_had_access_at(resource, start)
            else:
                rows = reports.who_has_access_now(resource, now=start)
            reports.record_report(
                actor=None,
                report=name,
                resource=resource,
                start=start,
                end=end,
                rows=len(rows),
                via="command",
                fmt="csv",
            )
            self._write(output, [reports.to_csv(rows)])
        finally:
            if output is not None:
                output.close()

    # --- output -----------------------------------------------------------------------

    def _open(self, path: str | None) -> IO[bytes] | None:
        """The output file, opened before anything is audited; None means stdout."""
        if path is None or path == "-":
            return None
        try:
            return open(path, "wb")  # closed by the caller
        except OSError as exc:
            raise usage_error(f"cannot write {path}: {exc.strerror}") from None

    def _write(self, output: IO[bytes] | None, pieces: Iterable[str]) -> None:
        if output is not None:
            for piece in pieces:
                output.write(piece.encode("utf-8"))
            return
        # Bytes to the real stdout whatever the locale says; text to a StringIO in tests.
        buffer = getattr(self.stdout, "buffer", None)
        if buffer is not None:
            self.stdout.flush()
            for piece in pieces:
                buffer.write(piece.encode("utf-8"))
            buffer.flush()
        else:
            for piece in pieces:
                self.stdout.write(piece, ending="")
