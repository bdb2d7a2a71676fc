"""Pomerium's unified configuration API (``pomerium.config.ConfigService``, Connect
unary JSON) as JSON Schema (draft 2020-12): the messages the portal sends and reads.

Our own subset of Pomerium's published OpenAPI document for ConfigService (kept outside
this repository and never copied into it); ``tests/zero/test_configservice_schemas.py``
checks every field
declared here against Pomerium's document, so the two cannot drift apart. Both sides use
it: the Core stand-in (``devtools/coresim``) refuses requests that do not validate and
checks its own answers; the client can check what it sends and reads.

    errors("CreatePolicyRequest", body)   # [] or readable messages
    validate("Policy", answer)            # raises ContractError

Requests are closed (unknown keys refused), as Pomerium's are; so is ``Policy``, whose
fields are all declared. ``Route`` is open for reading (Pomerium's route has dozens of
keys the portal never reads) but closed inside ``UpdateRouteRequest``. Field names are
proto-JSON lowerCamelCase; 64-bit integers are integers or decimal strings.

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

__all__ = ["METHODS", "SCHEMA_NAMES", "ContractError", "errors", "schema", "validate"]

# ConfigService methods the portal calls; each has <Method>Request and <Method>Response.
METHODS = (
    "GetServerInfo",
    "ListPolicies",
    "GetPolicy",
    "CreatePolicy",
    "UpdatePolicy",
    "DeletePolicy",
    "ListRoutes",
    "GetRoute",
    "UpdateRoute",
)
SCHEMA_NAMES = (
    *(f"{method}{kind}" for method in METHODS for kind in ("Request", "Response")),
    "Policy",
    "Route",
    "EntityInfo",
    "ConnectError",
)
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$", re.ASCII
)
_MAX_MESSAGES = 20


class ContractError(ValueError):
    """An instance does not match a ConfigService schema; ``errors`` lists why."""

    def __init__(self, schema_name: str, messages: list[str]) -> None:
        self.schema_name = schema_name
        self.errors = messages
        super().__init__(f"not a valid {schema_name}: " + "; ".join(messages))


def _format_checker() -> FormatChecker:
    checker = FormatChecker(formats=())

    @checker.checks("date-time", raises=ValueError)
    def _date_time(value: object) -> bool:
        if not isinstance(value, str):
            return True
        if not _RFC3339.match(value):
            return False
        # Python reads at most 6 fraction digits; the date itself is what is checked here.
        head, _, _rest = value.partition(".")
        datetime.fromisoformat(head[:19])
        return True

    return checker


def _load(name: str) -> dict[str, Any]:
    text = resources.files(__name__).joinpath(f"{name}.json").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@cache
def _registry() -> Registry:
    pairs = []
    for name in SCHEMA_NAMES:
        contents = _load(name)
        pairs.append((contents["$id"], Resource.from_contents(contents)))
    return Registry().with_resources(pairs)


@cache
def _validator(schema_name: str) -> Draft202012Validator:
    return Draft202012Validator(
        schema(schema_name), registry=_registry(), format_checker=_format_checker()
    )


def schema(schema_name: str) -> dict[str, Any]:
    """The schema document (a fresh copy); KeyError for an unknown name."""
    if schema_name not in SCHEMA_NAMES:
        raise KeyError(f"no ConfigService schema named {schema_name!r}")
    return _load(schema_name)


def _where(error: ValidationError) -> str:
    path = "$"
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def errors(schema_name: str, instance: object) -> list[str]:
    """Readable reasons why ``instance`` is not a ``schema_name``; [] when it is.

    Messages name the place (``$.policy.sourcePpl``), at most twenty; KeyError for an
    unknown schema name.
    """
    validator = _validator(schema_name)
    found: list[str] = []
    ordered = sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.path)))
    for error in ordered:
        subs = error.context or [error]
        for sub in subs:
            message = f"{_where(sub)}: {sub.message}"
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
