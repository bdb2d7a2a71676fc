"""``manage.py access_report``: who had access to a resource, as CSV.

    access_report [--resource SLUG] [--at ISO | --between ISO ISO] [-o FILE]

Without ``--at`` or ``--between`` it reports who has access now; without ``--resource``
it covers every resource. Writes to stdout unless ``-o`` names a file. Bad arguments (a bad
date, an unknown resource, a file that cannot be written) exit with status 2 and one line
on stderr, before anything is written or audited.

Every run is audited (``audit.report_viewed``, ``via: command``) with actor ``system``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from apps.access import reports
from apps.access.models import Resource
from apps.audit.management.cli import (
    OneLineErrorsMixin,
    instant,
    open_output,
    usage_error,
    write_output,
)


class Command(OneLineErrorsMixin, BaseCommand):
    help = "Print an access report (CSV): who had access at or between times, or has it now."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--resource", metavar="SLUG", help="default: every resource")
        parser.add_argument("--at", metavar="ISO", help="who had access at this instant")
        parser.add_argument(
            "--between", nargs=2, metavar=("FROM", "UNTIL"), help="who had access in this range"
        )
        parser.add_argument("-o", "--output", metavar="FILE", help="default: stdout")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["at"] is not None and options["between"] is not None:
            raise usage_error("use --at or --between, not both")
        resource = None
        if options["resource"]:
            resource = Resource.objects.filter(slug=options["resource"]).first()
            if resource is None:
                raise usage_error(f"--resource {options['resource']!r}: no such resource")
        end: datetime | None
        if options["between"] is not None:
            start = instant("--between", options["between"][0], end=False)
            end = instant("--between", options["between"][1], end=True)
            assert start is not None and end is not None
            if end <= start:
                raise usage_error("--between: UNTIL must be later than FROM")
            name = "who_had_access"
        elif options["at"] is not None:
            start = instant("--at", options["at"], end=False)
            assert start is not None
            end, name = None, "who_had_access_at"
        else:
            start, end, name = timezone.now(), None, "who_has_access_now"
        output = open_output(options["output"])
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
            write_output(self.stdout, output, [reports.to_csv(rows)])
        finally:
            if output is not None:
                output.close()
