"""``manage.py zero_simulator``: run the Pomerium Zero simulator in the foreground."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from devtools.zerosim import simulator


class Command(BaseCommand):
    help = "Serve a simulated Pomerium Zero API (for the demo and manual testing)."

    def add_arguments(self, parser: CommandParser) -> None:
        simulator.add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        simulator.serve(simulator.from_options(options), self.stdout)
