"""``manage.py bootstrap FILE``: create or update resources from a YAML or JSON file.

Idempotent (policy as code): run it on every deploy. A bad file exits 2 with one
readable line and changes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.access.resources import DefinitionError, apply_definitions


def load_definitions(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"bootstrap: cannot read {path}: {exc.strerror}", returncode=2) from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CommandError(
            f"bootstrap: {path} is not valid YAML/JSON: {first}", returncode=2
        ) from None
    if not isinstance(data, dict) or "resources" not in data:
        raise CommandError(f"bootstrap: {path} needs a top-level 'resources' list.", returncode=2)
    return data["resources"]


class Command(BaseCommand):
    help = "Create or update resources from a YAML/JSON file (idempotent; all or nothing)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="resources.yaml or resources.json")

    def handle(self, *args: Any, file: Path, **options: Any) -> None:
        definitions = load_definitions(file)
        try:
            summary = apply_definitions(definitions)
        except DefinitionError as exc:
            raise CommandError(f"bootstrap: {exc}", returncode=2) from None
        self.stdout.write(f"bootstrap: {summary}")
