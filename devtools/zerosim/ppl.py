"""The Zero simulator's own PPL: validation beyond the schema, and the evaluator.

Written from the contract (``docs/zero-api.md``, ``apps/zero/contract/PPL.json``)
and Pomerium's documented semantics, deliberately independent of the portal's
``apps.ppl``: a bug there must not be able to hide itself here.

Validation is the contract schema first (structure, criterion names, value
shapes), then what a schema cannot say: real dates, known time zones, parseable
day lists, times of day and CIDRs.

Evaluation answers "would the proxy let this request through?":

* access = some ``allow`` body matches and no ``deny`` body matches;
* a body matches when any of its non-empty operator terms matches: ``and`` all,
  ``or`` any, ``not`` none, ``nor`` not all; empty lists and empty bodies add
  nothing;
* ``email`` and the other string matchers compare exactly (case-sensitive);
* a criterion whose request fact was not given (method, path, source IP, user
  id, claims, devices, certificates, SSH, MCP) never matches.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apps.zero import contract

__all__ = [
    "Request",
    "evaluate",
    "parse_date",
    "parse_days",
    "parse_time",
    "rules",
    "semantic_errors",
    "validate",
]

OPERATORS = ("and", "or", "not", "nor")
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DATE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})?$"
)
_TIME_24 = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")
_TIME_12 = re.compile(r"^(\d{1,2})(?::(\d{2}))?(?::(\d{2}))?\s*([AaPp][Mm])$")


@dataclass(frozen=True)
class Request:
    """The facts of one request the proxy decides on; None = not known."""

    email: str = ""
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    groups: tuple[str, ...] = ()
    method: str | None = None
    path: str | None = None
    source_ip: str | None = None
    user: str | None = None
    claims: Mapping[str, Any] | None = None


# ------------------------------------------------------------------ parsing


def parse_date(value: str) -> datetime:
    """RFC 3339 with or without a zone (zone-less values are UTC); ValueError if invalid."""
    match = _DATE.match(value)
    if not match:
        raise ValueError(f"{value!r} is not an RFC 3339 date-time")
    zone = match.group(8)
    text = value[: match.start(8)] if zone else value
    parsed = datetime.fromisoformat(text.replace("t", "T"))
    if not zone:
        return parsed.replace(tzinfo=UTC)
    offset = "+00:00" if zone in "Zz" else zone
    return datetime.fromisoformat(text.replace("t", "T") + offset).astimezone(UTC)


def _day(name: str) -> int:
    key = name.strip().lower()
    if key in _DAYS:
        return _DAYS.index(key)
    if key in _FULL_DAYS:
        return _FULL_DAYS.index(key)
    raise ValueError(f"{name.strip()!r} is not a day of the week")


def parse_days(spec: str) -> frozenset[int]:
    """``*``, ``mon,wed``, ``mon-fri``, ``fri-mon`` (wraps) → weekday numbers (Monday=0)."""
    if spec.strip() == "*":
        return frozenset(range(7))
    days: set[int] = set()
    for part in spec.split(","):
        if not part.strip():
            raise ValueError(f"empty item in day list {spec!r}")
        first, dash, last = part.partition("-")
        start = _day(first)
        if not dash:
            days.add(start)
            continue
        end = _day(last)
        day = start
        days.add(day)
        while day != end:
            day = (day + 1) % 7
            days.add(day)
    return frozenset(days)


def parse_time(value: str) -> time:
    """``15:04``, ``15:04:05``, ``3:04PM``, ``3 PM`` → a time; ValueError if invalid."""
    text = value.strip()
    if match := _TIME_24.match(text):
        hour, minute, second = int(match[1]), int(match[2]), int(match[3] or 0)
    elif match := _TIME_12.match(text):
        hour, minute, second = int(match[1]), int(match[2] or 0), int(match[3] or 0)
        if not 1 <= hour <= 12:
            raise ValueError(f"{value!r}: a 12-hour clock runs from 1 to 12")
        hour = hour % 12 + (12 if match[4].lower() == "pm" else 0)
    else:
        raise ValueError(f"{value!r} is not a time of day")
    return time(hour, minute, second)  # ValueError for 25:00 or 10:61


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


def _networks(value: str | Sequence[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    items = [value] if isinstance(value, str) else list(value)
    return [ipaddress.ip_network(item.strip(), strict=False) for item in items]


# --------------------------------------------------------------- validation


def rules(ppl: object) -> list[dict[str, Any]]:
    """The rule objects of a (valid) policy: a single object becomes a list of one."""
    if isinstance(ppl, dict):
        return [ppl]
    return list(ppl) if isinstance(ppl, list) else []


def _criteria(ppl: object) -> Iterable[tuple[str, str, object]]:
    for r, rule in enumerate(rules(ppl)):
        for action in ("allow", "deny"):
            body = rule.get(action) or {}
            for op in OPERATORS:
                for c, criterion in enumerate(body.get(op) or []):
                    ((name, value),) = criterion.items()
                    yield f"$[{r}].{action}.{op}[{c}].{name}", name, value


def _check(name: str, value: Any) -> None:
    if name == "date":
        for bound in value.values():
            parse_date(bound)
    elif name == "day_of_week":
        parse_days(value)
    elif name == "time_of_day":
        _zone(value["timezone"])
        for key in ("after", "before"):
            if key in value:
                parse_time(value[key])
    elif name == "source_ip":
        _networks(value)
    elif name == "groups" and isinstance(value, dict):
        unknown = sorted(set(value) - {"has", "is", "exclude"})
        if unknown:
            raise ValueError(f"unknown groups matcher operator {unknown[0]!r}")


def semantic_errors(ppl: object) -> list[str]:
    """What the schema cannot check, for a ``ppl`` that already matches the PPL schema."""
    found = []
    for where, name, value in _criteria(ppl):
        try:
            _check(name, value)
        except ValueError as exc:
            found.append(f"{where}: {exc}")
    return found


def validate(ppl: object) -> list[str]:
    """Why ``ppl`` is not a policy Pomerium would accept; [] when it is."""
    return contract.errors("PPL", ppl) or semantic_errors(ppl)


# --------------------------------------------------------------- evaluation


def _string(subject: str | None, matcher: object) -> bool:
    if subject is None:
        return False
    ops = matcher if isinstance(matcher, dict) else {"is": matcher}
    checks = {
        "is": lambda v: subject == v,
        "not": lambda v: subject != v,
        "starts_with": lambda v: subject.startswith(v),
        "ends_with": lambda v: subject.endswith(v),
        "contains": lambda v: v in subject,
        "in": lambda v: subject in v,
        "not_in": lambda v: subject not in v,
    }
    return all(checks[op](value) for op, value in ops.items())


def _groups(groups: Sequence[str], matcher: object) -> bool:
    ops = matcher if isinstance(matcher, dict) else {"has": matcher}
    for op, value in ops.items():
        if op == "has" and value not in groups:
            return False
        if op == "is" and list(groups) != [value]:
            return False
        if op == "exclude" and value in groups:
            return False
    return True


def _date(at: datetime, matcher: Mapping[str, str]) -> bool:
    # after is inclusive, before exclusive: [after, before)
    if "after" in matcher and at < parse_date(matcher["after"]):
        return False
    return not ("before" in matcher and at >= parse_date(matcher["before"]))


def _time_of_day(at: datetime, matcher: Mapping[str, str]) -> bool:
    local = at.astimezone(_zone(matcher["timezone"])).time().replace(tzinfo=None)
    after = parse_time(matcher["after"]) if "after" in matcher else None
    before = parse_time(matcher["before"]) if "before" in matcher else None
    if after is not None and before is not None and after > before:  # wraps midnight
        return local >= after or local < before
    return (after is None or local >= after) and (before is None or local < before)


def _source_ip(address: str | None, value: str | Sequence[str]) -> bool:
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in _networks(value))


def _claim(claims: Mapping[str, Any] | None, name: str, value: object) -> bool:
    if claims is None or name not in claims:
        return False
    held = claims[name]
    held_list = held if isinstance(held, list) else [held]
    return value in held_list


def _matches(name: str, value: Any, request: Request) -> bool:
    if name == "accept":
        return True
    if name == "reject":
        return False
    if name == "authenticated_user":
        return bool(request.email or request.user)
    if name == "email":
        return bool(request.email) and _string(request.email, value)
    if name == "user":
        return _string(request.user, value)
    if name == "domain":
        domain = request.email.rpartition("@")[2] if "@" in request.email else None
        return _string(domain, value)
    if name == "groups":
        return _groups(request.groups, value)
    if name == "date":
        return _date(request.at, value)
    if name == "day_of_week":
        return request.at.astimezone(UTC).weekday() in parse_days(value)
    if name == "time_of_day":
        return _time_of_day(request.at, value)
    if name == "http_method":
        return _string(request.method, value)
    if name == "http_path":
        return _string(request.path, value)
    if name == "source_ip":
        return _source_ip(request.source_ip, value)
    if name.startswith("claim/"):
        return _claim(request.claims, name.removeprefix("claim/"), value)
    # device, certificates, CORS preflight, routes, records, SSH, MCP: no such fact here.
    return False


def _body(body: Mapping[str, Any], request: Request) -> bool:
    terms = []
    for op in OPERATORS:
        criteria = body.get(op) or []
        if not criteria:
            continue  # an empty list adds no term
        results = [_matches(name, value, request) for c in criteria for name, value in c.items()]
        if op == "and":
            terms.append(all(results))
        elif op == "or":
            terms.append(any(results))
        elif op == "not":
            terms.append(not any(results))
        else:  # nor
            terms.append(not all(results))
    return any(terms)


def evaluate(ppl: object, request: Request, *, validated: bool = False) -> bool:
    """Allow ``request`` under a valid policy? ValueError if ``ppl`` is not valid.

    ``validated=True`` skips the check for a policy the simulator already
    accepted (every stored policy was validated when it was written).
    """
    problems = [] if validated else validate(ppl)
    if problems:
        raise ValueError("; ".join(problems))
    all_rules = rules(ppl)
    allowed = any(_body(r["allow"], request) for r in all_rules if "allow" in r)
    denied = any(_body(r["deny"], request) for r in all_rules if "deny" in r)
    return allowed and not denied
