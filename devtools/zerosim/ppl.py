"""The Zero simulator's own PPL: validation beyond the schema, and the evaluator.

Written from the contract (``docs/zero-api.md``, ``apps/pomerium/contract/PPL.json``)
and Pomerium's documented semantics, deliberately independent of the portal's
``apps.ppl``: a bug there must not be able to hide itself here.

Validation is the contract schema first (structure, criterion names, value
shapes), then what a schema cannot say, read from Pomerium's code (``pkg/policy/criteria``)
and its PPL reference: real dates, known time zones, day lists, times of day in Go's
layouts (``AM``/``PM`` in capitals, two-digit minutes and seconds), IPs and CIDRs as Go's
``net`` package reads them, SSH public keys that parse, device and certificate matchers.

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

import base64
import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cryptography.exceptions import UnsupportedAlgorithm

from apps.pomerium import contract

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
# Go time layouts of Pomerium's reference: 15:04, 15:04:05, 15:04:05.999999999 and
# 3:04 PM, 3:04PM, 3 PM, 3PM. Go's "PM" matches only "AM"/"PM".
_TIME_24 = re.compile(r"^([0-9]{1,2}):([0-9]{2})(?::([0-9]{2})(?:[.,][0-9]+)?)?$")
_TIME_12 = re.compile(r"^([0-9]{1,2})(?::([0-9]{2}))? ?(AM|PM)$")
_FINGERPRINT = re.compile(r"^([0-9a-f]{64}|[0-9A-F]{2}(:[0-9A-F]{2}){31})$")


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
    key = name.lower()
    if key in _DAYS:
        return _DAYS.index(key)
    if key in _FULL_DAYS:
        return _FULL_DAYS.index(key)
    raise ValueError(f"{name!r} is not a day of the week")


def parse_days(spec: str) -> frozenset[int]:
    """``*``, ``mon,wed``, ``mon-fri``, ``fri-mon`` (wraps) → weekday numbers (Monday=0).
    No spaces: the reference writes none, and the strictest reading refuses them."""
    if spec == "*":
        return frozenset(range(7))
    days: set[int] = set()
    for part in spec.split(","):
        if not part:
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
    """``15:04``, ``15:04:05(.999)``, ``3:04PM``, ``3:04 PM``, ``3 PM`` → a time (as Go's
    ``time.Parse`` reads those layouts); ValueError if invalid."""
    if match := _TIME_24.match(value):
        hour, minute, second = int(match[1]), int(match[2]), int(match[3] or 0)
    elif match := _TIME_12.match(value):
        hour, minute, second = int(match[1]), int(match[2] or 0), 0
        if hour > 12:
            raise ValueError(f"{value!r}: a 12-hour clock runs up to 12")
        hour = hour % 12 + (12 if match[3] == "PM" else 0)
    else:
        raise ValueError(f"{value!r} is not a time of day")
    return time(hour, minute, second)  # ValueError for 25:00 or 10:61


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """Go's ``net.ParseCIDR``, else ``net.ParseIP`` (a single address)."""
    address, slash, bits = text.partition("/")
    if "%" in address or (slash and not re.fullmatch(r"[0-9]+", bits)):
        raise ValueError(f"expected IP or CIDR range, got: {text!r}")
    parsed = ipaddress.ip_address(address)  # ValueError, leading zeros included
    if slash and int(bits) > parsed.max_prefixlen:
        raise ValueError(f"expected IP or CIDR range, got: {text!r}")
    return ipaddress.ip_network(f"{address}/{int(bits) if slash else parsed.max_prefixlen}",
                                strict=False)  # fmt: skip


def _networks(value: str | Sequence[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    items = [value] if isinstance(value, str) else list(value)
    return [_network(item) for item in items]


def _ssh_key(text: str) -> None:
    """Some line of ``text`` holds a public key (Go's ``ssh.ParseAuthorizedKey``: comments,
    blank lines and an options field are allowed; the key type field itself is not
    checked, the key blob is). Parsed with ``cryptography``, which reads the blob's own type;
    it knows no security-key (``sk-``) types, so the simulator refuses those."""
    from cryptography.hazmat.primitives import serialization

    for line in text.splitlines():
        fields = line.strip().split()
        if not fields or fields[0].startswith("#"):
            continue
        for blob in fields[1:3]:  # after the type, or after options and the type
            try:
                kind = base64.b64decode(blob, validate=True)
                size = int.from_bytes(kind[:4], "big")
                typed = kind[4 : 4 + size] + b" " + blob.encode()
                if typed.split(b" ")[0].endswith(b"-cert-v01@openssh.com"):
                    serialization.load_ssh_public_identity(typed)
                else:
                    serialization.load_ssh_public_key(typed)
            except (ValueError, TypeError, IndexError, UnsupportedAlgorithm):
                continue
            return
    raise ValueError("no SSH public key found")


def _keys(value: str | Sequence[str]) -> None:
    for item in [value] if isinstance(value, str) else value:
        _ssh_key(item)


def _certificate(value: Mapping[str, Any]) -> None:
    for key, operand in value.items():
        items = [operand] if isinstance(operand, str) else operand
        if key == "fingerprint":
            if not isinstance(items, list) or not all(
                isinstance(f, str) and _FINGERPRINT.match(f) for f in items
            ):
                raise ValueError("unsupported certificate fingerprint format")
        elif key == "spki_hash":
            for item in items if isinstance(items, list) else [None]:
                if not isinstance(item, str) or len(base64.b64decode(item, validate=True)) != 32:
                    raise ValueError("certificate SPKI hash must be a base64 SHA-256 hash")
        elif key in ("san_email", "san_dns", "san_uri"):
            _string_matcher(operand)
        else:
            raise ValueError(f"unsupported certificate matcher condition: {key}")


def _string_matcher(value: object) -> None:
    if not isinstance(value, dict):
        return
    for op, operand in value.items():
        if op not in ("contains", "ends_with", "not", "is", "starts_with", "in", "not_in"):
            raise ValueError(f"unknown string matcher operator: {op}")
        if op in ("in", "not_in") and not isinstance(operand, list):
            raise ValueError(f"{op} matcher requires an array of strings")


def _device(value: object) -> None:
    if not isinstance(value, dict):
        raise ValueError(f"expected object for device criterion, got: {type(value).__name__}")
    for key, operand in value.items():
        if key not in ("approved", "is", "type"):
            raise ValueError(f"unexpected field in device criterion: {key}")
        if key in ("is", "type") and not isinstance(operand, str):
            raise ValueError(f"expected string for device criterion {key} operator")


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
    elif name in ("ssh_publickey", "ssh_ca"):
        _keys(value)
    elif name == "device":
        _device(value)
    elif name == "client_certificate":
        if not isinstance(value, dict):
            raise ValueError("expected object for certificate matcher")
        _certificate(value)
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
