"""Small pieces the Zero simulator's model and handler share: errors, timestamps,
``orderBy`` and RFC 6902 JSON Patch.

``orderBy`` is a comma-separated list of fields, each optionally prefixed
with ``-``; the fields allowed per list are the spec's (docs/zero-api.md), and
any other field is a 400 (the strictest reading). Fields that mean nothing in
one namespace (``cluster``, ``assigned``, ``inherited``) are accepted and keep
the order.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "ACTIVITY_ORDER",
    "CHANGESET_ORDER",
    "POLICY_ORDER",
    "ROUTE_ORDER",
    "SimError",
    "apply_json_patch",
    "order",
    "timestamp",
]

POLICY_ORDER = frozenset({"id", "name", "updatedAt", "assigned", "cluster"})
ROUTE_ORDER = frozenset(
    {"id", "name", "from", "to", "path", "prefix", "regex", "updatedAt", "assigned", "inherited"}
)
CHANGESET_ORDER = frozenset({"id", "status", "createdAt", "updatedAt", "cluster", "failureMessage"})
ACTIVITY_ORDER = frozenset({"updatedAt", "user", "entity.id", "entity.type", "entity.data.name"})
_NO_OP_FIELDS = frozenset({"assigned", "cluster", "inherited"})


class SimError(Exception):
    """An API error: becomes ``{"error": message, "details": [...]}`` with ``status``."""

    def __init__(
        self,
        status: int,
        message: str,
        details: list[str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details or []
        self.headers = dict(headers or {})


def timestamp(dt: datetime) -> str:
    """RFC 3339 UTC with milliseconds, as the Zero API shows them."""
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _field(item: Mapping[str, Any], name: str) -> str:
    value: Any = item
    for part in name.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    if name == "user" and isinstance(value, Mapping):
        value = value.get("email") or value.get("id")
    if isinstance(value, list):
        value = ",".join(map(str, value))
    return "" if value is None else str(value)


def _sort_key(name: str, item: Mapping[str, Any]) -> str:
    return _field(item, name)


def order(items: list[Any], order_by: str, allowed: frozenset[str]) -> list[Any]:
    """Sort by an ``orderBy`` value; SimError(400) for a field the list does not have."""
    terms = [t.strip() for t in order_by.split(",")]
    if any(not t or t.lstrip("-") not in allowed for t in terms):
        raise SimError(
            400,
            f"orderBy {order_by!r} is not valid here",
            [f"allowed fields: {', '.join(sorted(allowed))} (prefix - for descending)"],
        )
    result = list(items)
    for term in reversed(terms):  # stable sorts, last key first
        name = term.lstrip("-")
        if name in _NO_OP_FIELDS:
            continue
        result.sort(key=functools.partial(_sort_key, name), reverse=term.startswith("-"))
    return result


# ------------------------------------------------------------- JSON Patch


def _tokens(pointer: str) -> list[str]:
    if pointer == "":
        return []
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def _index(container: list[Any], part: str, *, for_add: bool) -> int:
    if part == "-" and for_add:
        return len(container)
    if not part.isdigit() or (len(part) > 1 and part.startswith("0")):
        raise SimError(400, f"JSON Patch: {part!r} is not an array index")
    index = int(part)
    limit = len(container) if for_add else len(container) - 1
    if index > limit:
        raise SimError(400, f"JSON Patch: index {index} is out of range")
    return index


def _parent(document: Any, pointer: str) -> tuple[Any, str]:
    tokens = _tokens(pointer)
    if not tokens:
        raise SimError(400, "JSON Patch: the whole document cannot be the target")
    target = document
    for token in tokens[:-1]:
        if isinstance(target, dict) and token in target:
            target = target[token]
        elif isinstance(target, list):
            target = target[_index(target, token, for_add=False)]
        else:
            raise SimError(400, f"JSON Patch: path {pointer!r} does not exist")
    return target, tokens[-1]


def _get(document: Any, pointer: str) -> Any:
    if pointer == "":
        return document
    parent, token = _parent(document, pointer)
    if isinstance(parent, dict):
        if token not in parent:
            raise SimError(400, f"JSON Patch: path {pointer!r} does not exist")
        return parent[token]
    if isinstance(parent, list):
        return parent[_index(parent, token, for_add=False)]
    raise SimError(400, f"JSON Patch: path {pointer!r} does not exist")


def _remove(document: Any, pointer: str) -> Any:
    parent, token = _parent(document, pointer)
    if isinstance(parent, dict):
        if token not in parent:
            raise SimError(400, f"JSON Patch: path {pointer!r} does not exist")
        return parent.pop(token)
    if isinstance(parent, list):
        return parent.pop(_index(parent, token, for_add=False))
    raise SimError(400, f"JSON Patch: path {pointer!r} does not exist")


def _add(document: Any, pointer: str, value: Any) -> None:
    parent, token = _parent(document, pointer)
    if isinstance(parent, dict):
        parent[token] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, token, for_add=True), value)
    else:
        raise SimError(400, f"JSON Patch: path {pointer!r} does not exist")


def apply_json_patch(document: dict[str, Any], operations: Sequence[Mapping[str, Any]]) -> Any:
    """RFC 6902 on a copy of ``document``; all or nothing; SimError(400) on failure."""
    result = copy.deepcopy(document)
    for i, op in enumerate(operations):
        kind, path = op["op"], op["path"]
        try:
            if kind == "add":
                _add(result, path, copy.deepcopy(op["value"]))
            elif kind == "remove":
                _remove(result, path)
            elif kind == "replace":
                _remove(result, path)
                _add(result, path, copy.deepcopy(op["value"]))
            elif kind == "move":
                if path.startswith(op["from"] + "/"):
                    raise SimError(400, "JSON Patch: cannot move a value into itself")
                _add(result, path, _remove(result, op["from"]))
            elif kind == "copy":
                _add(result, path, copy.deepcopy(_get(result, op["from"])))
            elif kind == "test" and _get(result, path) != op["value"]:
                raise SimError(400, f"JSON Patch: test failed at {path!r}")
        except SimError as exc:
            raise SimError(400, f"operation {i}: {exc.message}") from None
    return result
