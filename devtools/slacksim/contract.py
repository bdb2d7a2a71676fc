"""The written Slack contract (``contract.json``) and its checker, for the stand-in and tests.

errors("chat.postMessage", arguments)   # [] or readable messages
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

_PATH = Path(__file__).with_name("contract.json")


@cache
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(_PATH.read_text(encoding="utf-8"))
    return loaded


@cache
def _validator(name: str) -> Draft202012Validator:
    doc = document()
    if name not in doc["$defs"]:
        raise KeyError(f"no contract definition named {name!r}")
    registry = Registry().with_resource(doc["$id"], Resource.from_contents(doc))
    return Draft202012Validator({"$ref": f"{doc['$id']}#/$defs/{name}"}, registry=registry)


def errors(name: str, instance: Any) -> list[str]:
    """Why ``instance`` is not a valid ``name`` (at most 10 reasons), or []."""
    out = []
    for error in sorted(_validator(name).iter_errors(instance), key=lambda e: list(e.path)):
        where = "$" + "".join(
            f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path
        )
        out.append(f"{where}: {error.message}"[:300])
        if len(out) == 10:
            break
    return out
