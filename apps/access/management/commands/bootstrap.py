"""``manage.py bootstrap FILE``: create or update resources from a YAML or JSON file.

Idempotent (policy as code): run it on every deploy. A bad file exits 2 with one
readable line and changes nothing. Besides ``resources``, the file may hold the sections
other apps registered (``resources.register_section``, e.g. ``reviews``); all of it is
applied in one transaction, so a bad section changes nothing either.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.access.services.resources import DefinitionError, apply_definitions, sections
from apps.audit import services as audit


def load_document(path: Path) -> dict[str, Any]:
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
    if not isinstance(data, dict) or not ({"resources", *sections()} & set(data)):
        raise CommandError(f"bootstrap: {path} needs a top-level 'resources' list.", returncode=2)
    return data


class Command(BaseCommand):
    help = "Create or update resources from a YAML/JSON file (idempotent; all or nothing)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="resources.yaml or resources.json")

    def handle(self, *args: Any, file: Path, **options: Any) -> None:
        data = load_document(file)
        lines = []
        try:
            with audit.atomic():
                if "resources" in data:
                    lines.append(f"bootstrap: {apply_definitions(data['resources'])}")
                for name, apply in sections().items():
                    if name in data:
                        lines.append(f"bootstrap: {name}: {apply(data[name], actor=None)}")
        except DefinitionError as exc:
            raise CommandError(f"bootstrap: {exc}", returncode=2) from None
        for line in lines:
            self.stdout.write(line)
