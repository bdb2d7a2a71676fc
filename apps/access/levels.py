"""What an access level allows, in plain words: the one home of that sentence.

A level is a list of extra PPL criteria ANDed into each grant rule (``AccessLevel``). An
approver deciding "Full or Read-only?" needs to read what each one lets the person do, not
its JSON; the approve page, the break-glass review page, Slack messages and the request page
all say it with ``level_meaning``. The words follow Pomerium's reading of each criterion
(docs/ppl.md): string matchers compare exactly, ``source_ip`` is an address or CIDR block
(or a list of them), and the HTTP criteria do not apply on SSH routes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .models import AccessLevel

# HTTP methods that only read (RFC 9110 "safe" methods).
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})

NO_LIMIT = "Everything the resource offers: no limit on methods, paths or addresses."


def _listed(items: Iterable[str], *, joiner: str = "and") -> str:
    names = [str(item) for item in items]
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} {joiner} {names[-1]}"


def _matcher(value: Any, one: str, many: str) -> str | None:
    """A PPL string matcher in words, e.g. ``{"in": ["GET", "HEAD"]}`` with ("HTTP method",
    "HTTP methods") → "only the HTTP methods GET or HEAD"; None if the value is not a
    matcher this function knows (the caller then quotes it)."""
    if isinstance(value, str):
        value = {"is": value}
    if not isinstance(value, dict) or not value:
        return None
    parts = []
    for key, operand in value.items():
        if key == "is" and isinstance(operand, str):
            parts.append(f"only the {one} {operand}")
        elif key == "in" and isinstance(operand, list) and operand:
            noun = one if len(operand) == 1 else many
            parts.append(f"only the {noun} {_listed(operand, joiner='or')}")
        elif key in ("not_in", "not") and isinstance(operand, list | str):
            parts.append(
                f"any {one} except {_listed([operand] if isinstance(operand, str) else operand)}"
            )
        elif key == "starts_with" and isinstance(operand, str):
            parts.append(f"only {many} starting with {operand}")
        elif key == "ends_with" and isinstance(operand, str):
            parts.append(f"only {many} ending in {operand}")
        elif key == "contains" and isinstance(operand, str):
            parts.append(f"only {many} containing {operand}")
        else:
            return None
    return ", and ".join(parts)


def _methods(value: Any) -> str | None:
    words = _matcher(value, "HTTP method", "HTTP methods")
    if words is None:
        return None
    allowed: set[str] | None = None
    if isinstance(value, str):
        allowed = {value}
    elif isinstance(value, dict) and set(value) <= {"is", "in"}:
        allowed = {value["is"]} if "is" in value else set(value.get("in") or [])
    if allowed is not None and allowed <= SAFE_METHODS:
        words += " (reading only: no changes)"
    return words


def _addresses(value: Any) -> str | None:
    blocks = [value] if isinstance(value, str) else value
    if not isinstance(blocks, list) or not blocks or not all(isinstance(b, str) for b in blocks):
        return None
    return f"only from {_listed(blocks, joiner='or')}"


def criterion_words(criterion: Any) -> str:
    """One criterion (``{"http_method": {...}}``) as a phrase; unknown shapes are quoted."""
    if not isinstance(criterion, dict) or len(criterion) != 1:
        return f"also: {json.dumps(criterion, sort_keys=True)}"
    ((name, value),) = criterion.items()
    base, _, claim = str(name).partition("/")
    words: str | None = None
    if base == "http_method":
        words = _methods(value)
    elif base == "http_path":
        words = _matcher(value, "path", "paths")
    elif base == "source_ip":
        words = _addresses(value)
    elif base == "ssh_username":
        words = _matcher(value, "SSH user", "SSH users")
    elif base == "ssh_username_matches_email" and value is True:
        words = "SSH only as the user named by their email address"
    elif base == "ssh_username_matches_claim" and isinstance(value, str):
        words = f"SSH only as the user named by their {value!r} claim"
    elif base == "ssh_publickey":
        words = "SSH only with the listed public keys"
    elif base in ("ssh_user_ca", "ssh_ca"):
        words = "SSH only with a certificate from the listed certificate authority"
    elif base == "mcp_tool":
        words = _matcher(value, "MCP tool", "MCP tools")
    elif base == "domain":
        words = _matcher(value, "email domain", "email domains")
    elif base == "claim" and claim:
        words = f"only while their {claim!r} claim is {_listed([str(value)], joiner='or')}"
    elif base == "groups" and isinstance(value, dict) and isinstance(value.get("has"), str):
        words = f"only while they are in the group {value['has']}"
    elif base == "client_certificate":
        words = "only with a matching client certificate"
    elif base == "device":
        words = "only from a matching device"
    elif base in ("accept", "authenticated_user") and value is True:
        words = "no further limit"
    elif base == "reject" and value is True:
        words = "never (this level lets nobody in)"
    if words is None:
        return f"also: {json.dumps(criterion, sort_keys=True)}"
    return words


def criteria_meaning(criteria: Any) -> list[str]:
    """Each extra criterion as a phrase, in order; all of them must hold (PPL ``and``)."""
    if not isinstance(criteria, list) or not criteria:
        return [NO_LIMIT]
    return [criterion_words(c) for c in criteria]


def level_meaning(level: AccessLevel | None) -> list[str]:
    """What holding ``level`` allows, one phrase per limit; a resource without levels (None)
    grants everything its policy route offers."""
    return criteria_meaning(level.criteria if level is not None else [])


def level_summary(level: AccessLevel | None) -> str:
    """``Read-only: only the HTTP methods GET, HEAD or OPTIONS (reading only: no changes)``,
    in one line (for Slack and other one-line places)."""
    name = level.name if level is not None else "Full access"
    return f"{name}: " + "; ".join(level_meaning(level))
