"""Pomerium Policy Language (PPL): rendering, canonical form, validation, evaluation.

The bottom layer: pure, deterministic functions with no I/O, no Django and no imports
from any app, so every app may use it (access validates base rules with it, zero renders
and compares policies). The portal renders the
managed policy from the base rules an operator configured plus one rule per live
grant, and validates rules as strictly as Pomerium does, for the registry of criteria
the target's flavour has (``CRITERIA_ZERO``, ``CRITERIA_CORE``; docs/ppl.md): what passes
here is what Pomerium accepts, so one bad value cannot make a whole policy write fail.
The Zero simulator does NOT use this module: it checks what we send against the written
contract with its own code, so a bug here cannot hide itself.

Semantics follow Pomerium's generator (``pkg/policy/generator``):

* access = at least one ``allow`` rule matches and no ``deny`` rule matches;
* inside a rule body each operator forms a term and the body matches when ANY
  term matches; an empty operator list contributes no term;
* ``and``: all criteria match; ``or``: at least one; ``not``: none match
  (NOT A AND NOT B); ``nor``: at least one does not match (NOT A OR NOT B).
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from apps import ppl_values

__all__ = [
    "CRITERIA_CORE",
    "CRITERIA_ZERO",
    "DENY_ALL_RULE",
    "GrantRule",
    "criteria_errors",
    "digest",
    "dumps",
    "evaluate",
    "matches_request",
    "normalize",
    "parse_date_bound",
    "parse_rfc3339",
    "render_policy",
    "rfc3339",
    "validate_ppl",
]

# An allow rule that can never match: unambiguous "nobody" (a policy with no
# rules at all is also a deny, but an empty list reads like a mistake).
DENY_ALL_RULE: dict[str, Any] = {"allow": {"and": [{"reject": True}]}}

ACTIONS = frozenset({"allow", "deny"})
OPERATORS = ("and", "or", "not", "nor")
# The criteria each flavour's policy engine registers (docs/ppl.md). Core's is
# ``pkg/policy/criteria`` in pomerium/pomerium (v0.33: ``ssh_ca``, not ``ssh_user_ca``;
# ``pomerium_routes`` was removed in 2023). Zero and Enterprise add ``date``,
# ``day_of_week``, ``time_of_day`` and ``record``. ``claim/<name>`` (any ``name/sub-path``)
# is matched on the part before the first ``/``, as Pomerium's parser cuts it.
CRITERIA_CORE = frozenset(
    {
        "accept",
        "authenticated_user",
        "claim",
        "client_certificate",
        "cors_preflight",
        "device",
        "domain",
        "email",
        "groups",
        "http_method",
        "http_path",
        "invalid_client_certificate",
        "mcp_tool",
        "reject",
        "source_ip",
        "ssh_ca",
        "ssh_publickey",
        "ssh_username",
        "ssh_username_matches_claim",
        "ssh_username_matches_email",
        "user",
    }
)
CRITERIA_ZERO = CRITERIA_CORE | frozenset({"date", "day_of_week", "record", "time_of_day"})
STRING_MATCHER_KEYS = frozenset(
    {"is", "in", "not_in", "starts_with", "ends_with", "contains", "not"}
)
LIST_MATCHER_KEYS = frozenset({"has", "is", "exclude"})
DATE_KEYS = frozenset({"after", "before"})
_STRING_CRITERIA = frozenset(
    {"email", "user", "domain", "http_method", "http_path", "mcp_tool", "ssh_username"}
)
_LIST_CRITERIA = frozenset({"groups", "claim"})

# RFC 3339 date-time: full date, "T" (or space), time, optional fraction and a
# mandatory zone. datetime.fromisoformat alone also accepts naive and basic
# ISO 8601 forms, which Pomerium would not read the same way.
_RFC3339_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
# A ``date`` bound as Pomerium's own docs write it, without a zone: read as UTC.
_ZONELESS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$")


@dataclass(frozen=True, eq=False)
class GrantRule:
    """One grant's rule as it appears in the policy: who, from when, until when, and how.

    The canonical, hashable key of a rule: two ``GrantRule`` are equal (and hash alike)
    exactly when they render byte-identical rules, i.e. when their ``canonical`` forms
    are equal: the email as given, both bounds as ``rfc3339`` text (UTC, whole seconds)
    and the criteria as ``dumps`` text. That form is taken once, when the rule is made,
    and rendering uses it as is.

    Both datetimes must be timezone-aware; making the rule raises ``ValueError``
    otherwise. ``criteria`` are extra criteria ANDed after ``email`` and ``date`` in
    the order given (an access level's matchers, then a schedule's ``day_of_week`` and
    ``time_of_day``); empty renders exactly the plain two-criterion rule.
    """

    email: str
    not_before: datetime
    expires_at: datetime
    criteria: tuple[Mapping[str, Any], ...] = ()
    canonical: tuple[str, str, str, str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "canonical",
            (
                self.email,
                rfc3339(self.not_before),
                rfc3339(self.expires_at),
                dumps(list(self.criteria)),
            ),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GrantRule):
            return NotImplemented
        return self.canonical == other.canonical

    def __hash__(self) -> int:
        return hash(self.canonical)

    def __getitem__(self, index: Any) -> Any:
        """Indexing reads the canonical form (email, after, before, criteria)."""
        return self.canonical[index]


# --------------------------------------------------------------------------- #
# Rendering and canonical form
# --------------------------------------------------------------------------- #


def rfc3339(dt: datetime) -> str:
    """Format an aware datetime as UTC RFC 3339 with seconds precision and ``Z``.

    Microseconds are truncated (not rounded) so the output never moves past the
    input. Raises ``ValueError`` for a naive datetime: guessing its zone could
    shift a grant window by hours.
    """
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"naive datetime {dt.isoformat()} has no time zone")
    return dt.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(value: object) -> datetime | None:
    """Parse an RFC 3339 timestamp with an explicit zone; ``None`` if it is not one."""
    if not isinstance(value, str) or not _RFC3339_RE.match(value):
        return None
    text = value.replace("t", "T").replace("z", "Z")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def parse_date_bound(value: object) -> datetime | None:
    """A ``date`` matcher bound: RFC 3339 with a zone, or a zone-less date-time read as
    UTC (Pomerium's docs show ``2150-01-02T16:20:00``). ``None`` if it is neither.

    The portal itself always writes an explicit ``Z`` (``rfc3339``).
    """
    parsed = parse_rfc3339(value)
    if parsed is not None:
        return parsed
    if not isinstance(value, str) or not _ZONELESS_RE.match(value):
        return None
    try:
        naive = datetime.fromisoformat(value.replace("t", "T"))
    except ValueError:
        return None
    return naive.replace(tzinfo=UTC)


def render_policy(
    base_rules: Sequence[Mapping[str, Any]], grants: Iterable[GrantRule], *, dated: bool = True
) -> list[dict[str, Any]]:
    """Render the managed policy: base rules (as given), then one rule per grant.

    Each email is written exactly as given: Pomerium's ``email`` criterion is exact,
    case-sensitive equality with the identity provider's value, so ``First.Last@Corp.com``
    must stay as it is. A grant's rule is ``email AND date AND <criteria...>``; with
    ``dated=False`` (a policy engine without ``date``, e.g. Pomerium Core, where the
    portal adds and removes the rule at the window's bounds) it is ``email AND
    <criteria...>``. Grants are
    sorted by (email, not_before, expires_at, canonical criteria) so the result does not
    depend on the order grants were loaded in. With neither base rules nor
    grants the result is ``[DENY_ALL_RULE]``. The returned structures are fresh
    copies; mutating them does not affect the inputs or ``DENY_ALL_RULE``.
    """
    rules: list[dict[str, Any]] = [dict(copy.deepcopy(rule)) for rule in base_rules]
    # Sort on the rendered values: grants that tie render identical rules, so
    # the output is the same for every input order.
    rendered = sorted(g.canonical for g in grants)
    rules.extend(
        {
            "allow": {
                "and": [
                    {"email": {"is": email}},
                    *([{"date": {"after": after, "before": before}}] if dated else []),
                    *json.loads(extra),
                ]
            }
        }
        for email, after, before, extra in rendered
    )
    if not rules:
        rules.append(copy.deepcopy(DENY_ALL_RULE))
    return rules


def dumps(ppl: object) -> str:
    """Canonical JSON text: same input, byte-identical output."""
    return json.dumps(ppl, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(ppl: object) -> str:
    """SHA-256 hex digest of ``dumps(ppl)``."""
    return hashlib.sha256(dumps(ppl).encode("utf-8")).hexdigest()


def _parse_text(text: str) -> object:
    """JSON first; then YAML (the console's native form) when PyYAML is present."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        import yaml
    except ImportError:  # pragma: no cover - PyYAML is a project dependency
        return text
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return loaded if isinstance(loaded, list | dict) else text


def normalize(remote_ppl: object) -> list | dict | str:
    """Bring a policy's ``ppl`` as read from the API into comparable form.

    A string is parsed (JSON, else YAML); a single rule dict becomes a
    one-element list; ``None`` or an empty string become ``[]``. Text that is
    not PPL at all is returned unchanged as a string, which never compares
    equal to a rendered policy. Compare with ``dumps(normalize(remote)) ==
    dumps(desired)``.
    """
    value: object = remote_ppl
    if value is None:
        return []
    if isinstance(value, str):
        if not value.strip():
            return []
        value = _parse_text(value)
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list | str):
        return value
    return str(value)


# --------------------------------------------------------------------------- #
# Validation
# --------------------------------------------------------------------------- #


def _validate_string_matcher(where: str, value: object) -> list[str]:
    if isinstance(value, str):
        return []
    if not isinstance(value, dict) or not value:
        return [f"{where}: expected a string or a non-empty string matcher object"]
    errors = []
    for key, operand in value.items():
        if key not in STRING_MATCHER_KEYS:
            errors.append(f"{where}: unknown string matcher {key!r}")
        elif key in ("in", "not_in"):
            if not isinstance(operand, list) or not all(isinstance(s, str) for s in operand):
                errors.append(f"{where}.{key}: expected a list of strings")
        elif not isinstance(operand, str):
            errors.append(f"{where}.{key}: expected a string")
    return errors


def _validate_list_matcher(where: str, value: object) -> list[str]:
    if isinstance(value, str):
        return []
    if not isinstance(value, dict) or not value:
        return [f"{where}: expected a string or a non-empty list matcher object"]
    errors = []
    for key, operand in value.items():
        if key not in LIST_MATCHER_KEYS:
            errors.append(f"{where}: unknown list matcher {key!r}")
        elif not isinstance(operand, str):
            errors.append(f"{where}.{key}: expected a string")
    return errors


def _validate_date(where: str, value: object) -> list[str]:
    if not isinstance(value, dict) or not value:
        return [f"{where}: expected an object with 'after' and/or 'before'"]
    errors = []
    for key, operand in value.items():
        if key not in DATE_KEYS:
            errors.append(f"{where}: unknown date matcher {key!r}")
        elif parse_date_bound(operand) is None:
            errors.append(f"{where}.{key}: {operand!r} is not an RFC 3339 date-time")
    return errors


def _string_matcher_errors(value: object) -> list[str]:
    return [error.lstrip(":. ") for error in _validate_string_matcher("", value)]


def _validate_criterion(where: str, criterion: object, registry: frozenset[str]) -> list[str]:
    if not isinstance(criterion, dict) or len(criterion) != 1:
        return [f"{where}: a criterion must be an object with exactly one key"]
    (name, value), *_ = criterion.items()
    base = name.split("/", 1)[0]
    if base not in registry:
        return [f"{where}: unknown criterion {name!r}"]
    here = f"{where}.{name}"
    if base in _STRING_CRITERIA:
        return _validate_string_matcher(here, value)
    if base in _LIST_CRITERIA:
        return _validate_list_matcher(here, value)
    if base == "date":
        return _validate_date(here, value)
    return [
        f"{here}: {error}" for error in ppl_values.value_errors(base, value, _string_matcher_errors)
    ]


def _validate_rule(where: str, rule: object, registry: frozenset[str]) -> list[str]:
    # Pomerium's schema allows "allow" and "deny" side by side in one object
    # (its docs' first example does this), so accept either or both.
    # ``{}`` and ``{"allow": {}}`` are valid and add nothing.
    if not isinstance(rule, dict):
        return [f"{where}: a rule must be an object with 'allow' and/or 'deny'"]
    errors = []
    for action, body in rule.items():
        if action not in ACTIONS:
            errors.append(f"{where}: unknown action {action!r} (expected allow or deny)")
            continue
        if not isinstance(body, dict):
            errors.append(f"{where}.{action}: expected an object with and/or/not/nor")
            continue
        for operator, criteria in body.items():
            here = f"{where}.{action}.{operator}"
            if operator not in OPERATORS:
                errors.append(f"{where}.{action}: unknown operator {operator!r}")
            elif not isinstance(criteria, list):
                errors.append(f"{here}: expected a list of criteria")
            else:
                for i, criterion in enumerate(criteria):
                    errors.extend(_validate_criterion(f"{here}[{i}]", criterion, registry))
    return errors


def criteria_errors(items: object, /, *, criteria: frozenset[str] = CRITERIA_ZERO) -> list[str]:
    """Errors of a list of criteria meant to be ANDed into a rule (an access level's).

    Each item must be one criterion object that the target's policy engine registers
    (``criteria``: ``CRITERIA_ZERO`` for Zero and Enterprise, ``CRITERIA_CORE`` for Core),
    with a value Pomerium accepts for it; an empty list is valid (it adds nothing).
    """
    if not isinstance(items, list):
        return ["criteria must be a list of criterion objects"]
    errors = []
    for i, criterion in enumerate(items):
        errors.extend(_validate_criterion(f"criteria[{i}]", criterion, criteria))
    return errors


def validate_ppl(ppl: object, *, criteria: frozenset[str] = CRITERIA_ZERO) -> list[str]:
    """Return human-readable errors for ``ppl``; an empty list means valid.

    Accepts a rule, a list of rules, or JSON text of either. ``criteria`` is the registry
    of the target's policy engine (``CRITERIA_ZERO``, the default, or ``CRITERIA_CORE``): a
    criterion outside it is an error, as are unknown actions and operators, malformed
    matchers, ``date`` bounds that are not RFC 3339, and every value Pomerium itself
    refuses (``apps.ppl_values``: CIDRs, days, times of day, SSH keys, ...).
    """
    value = ppl
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            return [f"policy is not valid JSON: {exc}"]
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        return ["policy must be a rule object or a list of rules"]
    errors: list[str] = []
    for i, rule in enumerate(value):
        errors.extend(_validate_rule(f"rule[{i}]", rule, criteria))
    return errors


# Evaluation lives in ``evaluation`` (imported last: it reads the names above).
from .evaluation import evaluate, matches_request  # noqa: E402
