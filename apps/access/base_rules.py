"""Who a resource's base rules let in, in words an auditor can read.

A resource's ``base_ppl`` holds always-on PPL rules an operator wrote (e.g. the SRE group's
allow rule). The access report lists everyone they let in beside the JIT grants: each
person, group, domain or pattern a rule names, with the other criteria of the same term as
its conditions. Groups stay groups: Pomerium asks the identity provider at every request,
so the portal can name the members it has seen sign in, never all of them.

PPL semantics (docs/ppl.md): a rule's body matches when any of its operators' terms
matches; ``and`` needs all its criteria, ``or`` any one, ``not``/``nor`` negate. Pure
functions over the stored JSON: no database.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["EVERYONE", "SIGNED_IN", "Subject", "subjects"]

PERSON = "person"
GROUP = "group"
DOMAIN = "domain"
PATTERN = "pattern"  # an email or user matcher other than is/in (ends_with, ...)
CLAIM = "claim"
SIGNED_IN = "everyone signed in"
EVERYONE = "everyone"
RULE = "rule"  # a term the portal cannot put in those words (not/nor, several subjects)

_WHO = frozenset({"email", "user", "domain", "groups", "authenticated_user", "accept"})


@dataclass(frozen=True)
class Subject:
    """One way in (or out, for ``deny``) that a base rule names."""

    action: str  # "allow" or "deny"
    kind: str  # PERSON, GROUP, DOMAIN, PATTERN, CLAIM, SIGNED_IN, EVERYONE or RULE
    value: str  # the email, group, domain, pattern or rule text ("" for everyone)
    conditions: tuple[Mapping[str, Any], ...] = ()  # the term's other criteria
    rule: int = 0  # the rule's position in base_ppl, from 1

    @property
    def conditions_text(self) -> str:
        return _text(list(self.conditions)) if self.conditions else ""


def _text(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _matcher(kind: str, value: object) -> Iterator[tuple[str, str]]:
    """(kind, value) of a string matcher: ``is``/``in`` name people (or users, domains);
    anything else is a pattern, said as written."""
    if isinstance(value, str):
        yield kind, value
        return
    if not isinstance(value, Mapping):
        yield RULE, _text(value)
        return
    for key, operand in value.items():
        if key in ("is", "in"):
            for item in _strings(operand):
                yield kind, item
        else:
            yield PATTERN, f"{key} {_text(operand)}"


def _who(criterion: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The subjects one "who" criterion names."""
    (name, value), *_ = criterion.items()
    if name == "accept":
        return [(EVERYONE, "")] if value is not False else []
    if name == "authenticated_user":
        return [(SIGNED_IN, "")] if value is not False else []
    if name == "groups":
        if isinstance(value, Mapping):
            found = [(GROUP, g) for key in ("has", "is") for g in _strings(value.get(key, []))]
            if set(value) - {"has", "is"}:
                found.append((RULE, _text(criterion)))
            return found
        return [(GROUP, g) for g in _strings(value)]
    if name == "email":
        return list(_matcher(PERSON, value))
    if name == "user":  # the identity provider's user id
        return [(k, f"user {v}" if k == PERSON else v) for k, v in _matcher(PERSON, value)]
    if name == "domain":
        return list(_matcher(DOMAIN, value))
    return [(RULE, _text(criterion))]


def _name(criterion: object) -> str:
    if isinstance(criterion, Mapping) and len(criterion) == 1:
        name = next(iter(criterion))
        return "claim" if isinstance(name, str) and name.startswith("claim/") else str(name)
    return ""


def _term(action: str, op: str, criteria: list[Any], rule: int) -> Iterator[Subject]:
    if op in ("not", "nor"):
        yield Subject(action, RULE, _text({op: criteria}), rule=rule)
        return
    if op == "or":
        # Each criterion is a way in by itself.
        for criterion in criteria:
            yield from _term(action, "and", [criterion], rule)
        return
    who = [c for c in criteria if _name(c) in _WHO]
    claims = [c for c in criteria if _name(c) == "claim"]
    conditions = tuple(c for c in criteria if c not in who and c not in claims)
    if len(who) + len(claims) > 1:
        yield Subject(action, RULE, _text({op: criteria}), rule=rule)
        return
    if claims:
        yield Subject(action, CLAIM, _text(claims[0]), conditions, rule)
        return
    if not who:
        # No one named: whoever meets the conditions (an IP range, a device...).
        yield Subject(action, EVERYONE, "", conditions, rule)
        return
    for kind, value in _who(who[0]):
        yield Subject(action, kind, value, conditions, rule)


def subjects(base_ppl: object) -> list[Subject]:
    """Everyone ``base_ppl`` names, rule by rule, allow and deny."""
    if not isinstance(base_ppl, list):
        return []
    found: list[Subject] = []
    for index, rule in enumerate(base_ppl, start=1):
        if not isinstance(rule, Mapping):
            continue
        for action in ("allow", "deny"):
            body = rule.get(action)
            if not isinstance(body, Mapping):
                continue
            for op, criteria in body.items():
                if isinstance(criteria, list) and criteria:
                    found.extend(_term(action, str(op), criteria, index))
    return found
