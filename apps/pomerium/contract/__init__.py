"""The Pomerium Zero wire contract as JSON Schema (draft 2020-12), and its checker.

One JSON file per body the portal sends or reads sits next to this module;
``docs/zero-api.md`` says in words what each means and how the unspecified
parts are read. Both sides use it: tests check the client's outgoing bodies
and the simulator's answers, and the simulator refuses any incoming body that
does not validate.

    errors("PolicyProperties", body)   # [] or readable messages
    validate("Policy", answer)         # raises ContractError

Request bodies are closed (unknown keys refused). Answers whose model the spec
gives in full (Policy, Changeset, ActivityLog, TokenResponse) are closed too,
so a stand-in cannot invent keys; Cluster, Settings, Route and Namespace are
open because the spec has many more keys than the portal reads. Formats are
asserted: ``date-time`` must be RFC 3339 with ``Z`` or an offset.

No network: ``$ref``s resolve only against these files.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource

__all__ = ["SCHEMA_NAMES", "ContractError", "enum", "errors", "schema", "validate"]

BASE_URI = "https://jitportal.invalid/zero-contract/"

SCHEMA_NAMES = (
    "TokenRequest",
    "TokenResponse",
    "PPL",
    "PolicyProperties",
    "Policy",
    "PolicyList",
    "JsonPatch",
    "Cluster",
    "ClusterList",
    "Settings",
    "Changeset",
    "ChangesetList",
    "ActivityLog",
    "ActivityLogList",
    "Route",
    "RouteList",
    "Namespace",
    "NamespaceList",
)
_SHARED = ("common",)

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$", re.ASCII
)
_MAX_MESSAGES = 20


class ContractError(ValueError):
    """An instance does not match a contract schema; ``errors`` lists why."""

    def __init__(self, schema_name: str, messages: list[str]) -> None:
        self.schema_name = schema_name
        self.errors = messages
        super().__init__(f"not a valid {schema_name}: " + "; ".join(messages))


def _format_checker() -> FormatChecker:
    checker = FormatChecker(formats=())

    @checker.checks("date-time", raises=ValueError)
    def _date_time(value: object) -> bool:
        if not isinstance(value, str):
            return True  # "type" reports non-strings
        if not _RFC3339.match(value):
            return False
        datetime.fromisoformat(value.upper().replace("Z", "+00:00"))  # ValueError: bad date
        return True

    return checker


def _load(name: str) -> dict[str, Any]:
    text = resources.files(__name__).joinpath(f"{name}.json").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@cache
def _registry() -> Registry:
    pairs = []
    for name in (*_SHARED, *SCHEMA_NAMES):
        contents = _load(name)
        pairs.append((contents["$id"], Resource.from_contents(contents)))
    return Registry().with_resources(pairs)


@cache
def _validator(schema_name: str) -> Draft202012Validator:
    if schema_name not in SCHEMA_NAMES:
        raise KeyError(f"no contract schema named {schema_name!r}")
    return Draft202012Validator(
        schema(schema_name), registry=_registry(), format_checker=_format_checker()
    )


def schema(schema_name: str) -> dict[str, Any]:
    """The schema document (a fresh copy); KeyError for an unknown name."""
    if schema_name not in SCHEMA_NAMES:
        raise KeyError(f"no contract schema named {schema_name!r}")
    return _load(schema_name)


def enum(name: str) -> tuple[str, ...]:
    """The values of a shared enumeration: ChangesetStatus, ActivityType, EntityType."""
    values = _load("common")["$defs"][name]["enum"]
    return tuple(values)


def _where(error: ValidationError) -> str:
    path = "$"
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _unknown_keys(error: ValidationError) -> list[str]:
    known = error.schema.get("properties", {})
    patterns = [re.compile(p) for p in error.schema.get("patternProperties", {})]
    instance = error.instance if isinstance(error.instance, dict) else {}
    return [
        key for key in instance if key not in known and not any(p.search(key) for p in patterns)
    ]


def _messages(error: ValidationError) -> list[str]:
    # anyOf/oneOf failures say little by themselves; name what each branch wanted.
    if error.context:
        return [f"{_where(sub)}: {sub.message}" for sub in error.context]
    custom = error.schema.get("x-unknown-key-message") if isinstance(error.schema, dict) else None
    if error.validator == "additionalProperties" and custom:
        return [f"{_where(error)}: {key!r} {custom}" for key in _unknown_keys(error)]
    return [f"{_where(error)}: {error.message}"]


def errors(schema_name: str, instance: object) -> list[str]:
    """Readable reasons why ``instance`` is not a ``schema_name``; [] when it is.

    Messages name the place (``$.ppl[0].allow.and[1]``) and never exceed
    twenty; KeyError for an unknown schema name.
    """
    validator = _validator(schema_name)
    found: list[str] = []
    ordered = sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.path)))
    for error in ordered:
        for message in _messages(error):
            if message not in found:
                found.append(message)
    if len(found) > _MAX_MESSAGES:
        found = [*found[:_MAX_MESSAGES], f"... and {len(found) - _MAX_MESSAGES} more"]
    return found


def validate(schema_name: str, instance: object) -> None:
    """Raise ContractError (a ValueError) unless ``instance`` is a ``schema_name``."""
    found = errors(schema_name, instance)
    if found:
        raise ContractError(schema_name, found)
