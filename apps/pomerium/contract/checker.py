"""One checker for a set of JSON Schemas (draft 2020-12) kept as files in a package: what
both wire contracts (Zero's v0 API, ``apps.pomerium.contract``; ConfigService,
``apps.pomerium.configservice_contract``) are checked with.

No network: ``$ref``s resolve only against the set's own files. Messages name the place
(``$.policy.sourcePpl``), at most twenty per instance. A schema may word an unknown-key
refusal itself with ``x-unknown-key-message``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from functools import cached_property
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource

__all__ = ["ContractError", "SchemaSet"]

MAX_MESSAGES = 20


class ContractError(ValueError):
    """An instance does not match a schema of the set; ``errors`` lists why."""

    def __init__(self, schema_name: str, messages: list[str]) -> None:
        self.schema_name = schema_name
        self.errors = messages
        super().__init__(f"not a valid {schema_name}: " + "; ".join(messages))


class SchemaSet:
    """The schemas ``names`` (plus ``shared`` ones only referenced) of ``package``.

    ``date_time`` says whether a string is a ``date-time`` as the contract reads it
    (raising ValueError or returning False when it is not); ``kind`` names the set in
    the KeyError for an unknown schema name.
    """

    def __init__(
        self,
        package: str,
        names: Iterable[str],
        *,
        kind: str,
        date_time: Callable[[str], bool],
        shared: Iterable[str] = (),
    ) -> None:
        self.package = package
        self.names = tuple(names)
        self.shared = tuple(shared)
        self.kind = kind
        self._date_time = date_time
        self._validators: dict[str, Draft202012Validator] = {}

    def load(self, name: str) -> dict[str, Any]:
        text = resources.files(self.package).joinpath(f"{name}.json").read_text("utf-8")
        loaded: dict[str, Any] = json.loads(text)
        return loaded

    def schema(self, schema_name: str) -> dict[str, Any]:
        """The schema document (a fresh copy); KeyError for an unknown name."""
        if schema_name not in self.names:
            raise KeyError(f"no {self.kind} schema named {schema_name!r}")
        return self.load(schema_name)

    @cached_property
    def _registry(self) -> Registry:
        pairs = []
        for name in (*self.shared, *self.names):
            contents = self.load(name)
            pairs.append((contents["$id"], Resource.from_contents(contents)))
        return Registry().with_resources(pairs)

    @cached_property
    def _format_checker(self) -> FormatChecker:
        checker = FormatChecker(formats=())
        check = self._date_time

        @checker.checks("date-time", raises=ValueError)
        def _date_time(value: object) -> bool:
            return not isinstance(value, str) or check(value)  # "type" reports non-strings

        return checker

    def _validator(self, schema_name: str) -> Draft202012Validator:
        if schema_name not in self._validators:
            self._validators[schema_name] = Draft202012Validator(
                self.schema(schema_name),
                registry=self._registry,
                format_checker=self._format_checker,
            )
        return self._validators[schema_name]

    def errors(self, schema_name: str, instance: object) -> list[str]:
        """Readable reasons why ``instance`` is not a ``schema_name``; [] when it is.
        KeyError for an unknown schema name."""
        validator = self._validator(schema_name)
        found: list[str] = []
        ordered = sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.path)))
        for error in ordered:
            for message in _messages(error):
                if message not in found:
                    found.append(message)
        if len(found) > MAX_MESSAGES:
            found = [*found[:MAX_MESSAGES], f"... and {len(found) - MAX_MESSAGES} more"]
        return found

    def validate(self, schema_name: str, instance: object) -> None:
        """Raise ContractError (a ValueError) unless ``instance`` is a ``schema_name``."""
        found = self.errors(schema_name, instance)
        if found:
            raise ContractError(schema_name, found)


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
