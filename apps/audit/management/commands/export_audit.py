"""``manage.py export_audit``: scheduled exports to a SIEM.

    export_audit --format csv|jsonl [--since ISO] [--until ISO] [--actor EMAIL]
                 [--resource SLUG] [--action ACTION] [-o FILE]

Writes to stdout unless ``-o`` names a file. Rows stream from the database
``export.CHUNK_SIZE`` at a time, so memory stays flat for any number of rows. Bad
arguments (a bad date, an unknown format or action, a file that cannot be written) exit
with status 2 and one line on stderr, before anything is written or audited.

Every run is audited (``audit.exported``) with actor ``system``: a command has no
verified identity, so the OS user and host are recorded in the details instead of a name
someone could claim. (Access reports are ``manage.py access_report``.)
"""

from __future__ import annotations

import getpass
import re
import socket
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from apps.audit import actions, export
from apps.audit.management.cli import (
    OneLineErrorsMixin,
    instant,
    open_output,
    usage_error,
    write_output,
)
from apps.audit.models import AuditEvent

_SLUG = re.compile(r"^[-a-zA-Z0-9_]{1,64}$")


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return "unknown"


class Command(OneLineErrorsMixin, BaseCommand):
    help = "Export the audit trail (CSV or JSON Lines)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", dest="fmt", metavar="csv|jsonl")
        parser.add_argument("--since", metavar="ISO", help="inclusive; a date is 00:00 UTC")
        parser.add_argument("--until", metavar="ISO", help="exclusive; a date includes that day")
        parser.add_argument("--actor", metavar="EMAIL", help="actor email, or 'system'")
        parser.add_argument("--resource", metavar="SLUG")
        parser.add_argument("--action", metavar="ACTION", help="e.g. grant.break_glass")
        parser.add_argument("-o", "--output", metavar="FILE", help="default: stdout")

    def handle(self, *args: Any, **options: Any) -> None:
        fmt = options["fmt"]
        if fmt not in export.FORMATS:
            if fmt is None:
                raise usage_error("--format is required: csv or jsonl")
            raise usage_error(f"--format {fmt!r}: use csv or jsonl")
        action = options["action"] or ""
        if action and not actions.is_registered(action):
            raise usage_error(f"--action {action!r} is not an audit action, e.g. grant.revoked")
        resource = options["resource"] or ""
        if resource and not _SLUG.match(resource):
            raise usage_error(f"--resource {resource!r} is not a slug")
        try:
            filters = export.ExportFilters(
                since=instant("--since", options["since"], end=False),
                until=instant("--until", options["until"], end=True),
                actor=(options["actor"] or "").strip().lower(),
                resource=resource,
                action=action,
            )
        except ValueError as exc:
            raise usage_error(str(exc)) from None
        output = open_output(options["output"])
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
            write_output(self.stdout, output, export.chunks(rows, fmt))
        finally:
            if output is not None:
                output.close()
