"""``manage.py core_simulator``: run the Pomerium Core ConfigService stand-in."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from devtools.coresim import simulator


class Command(BaseCommand):
    help = "Serve a stand-in for Pomerium Core's ConfigService (for the demo and manual testing)."

    def add_arguments(self, parser: CommandParser) -> None:
        simulator.add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        simulator.serve(simulator.from_options(options), self.stdout)
