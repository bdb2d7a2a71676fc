"""The Core stand-in's PPL: compile ``sourcePpl`` as Core does, and evaluate it.

Written from Pomerium's code (``pkg/policy/parser``, ``pkg/policy/generator``,
``pkg/policy/criteria``, v0.33) and ``pomerium-config-api.md`` section 3, never from the
portal's ``apps.ppl``:

* ``sourcePpl`` is text, read as YAML (JSON is YAML); the document is a rule object or a
  list of rule objects. Each key of a rule object is an action, ``allow`` or ``deny``, whose
  value is an object with ``and``/``or``/``not``/``nor`` lists (and an ignored ``action``);
  each list item is an object with exactly one key, the criterion (``claim/groups`` is the
  criterion ``claim`` with the sub-path ``groups``).
* every criterion must be one Core registers (``CORE_CRITERIA``); the first that is not
  fails the whole policy with ``unknown policy criterion: <name>``, the generator's own
  words. ``date``, ``day_of_week`` and ``time_of_day`` are Zero's and Enterprise's only.
* matcher values get the light checks Core's criteria make (a string matcher is a string
  or an object of known operators; ``source_ip`` parses).

Errors are ``PPLError`` with Pomerium's wording; the caller answers ``invalid_argument``
with ``invalid policy: <message>`` as ``CreatePolicy``/``UpdatePolicy`` do.

Evaluation reuses the Zero stand-in's evaluator (``devtools.zerosim.ppl``; both are
devtools, neither is the portal): allowed when some ``allow`` body matches and no ``deny``
body does; a criterion whose fact is not given never matches.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import yaml

from devtools.zerosim.ppl import Request
from devtools.zerosim.ppl import evaluate as zero_evaluate

__all__ = ["CORE_CRITERIA", "PPLError", "Request", "compile_ppl", "evaluate_rules"]

CORE_CRITERIA = frozenset(
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
        "ssh_publickey",
        "ssh_ca",
        "ssh_username",
        "ssh_username_matches_email",
        "ssh_username_matches_claim",
        "user",
    }
)
OPERATORS = ("and", "or", "not", "nor")
STRING_CRITERIA = frozenset({"email", "domain", "user", "http_method", "http_path", "ssh_username"})
STRING_OPS = frozenset({"is", "not", "starts_with", "ends_with", "contains", "in", "not_in"})
_MAX_SOURCE = 256 * 1024

Rule = dict[str, dict[str, list[dict[str, Any]]]]


class PPLError(ValueError):
    """The policy does not compile; the message is Pomerium's wording."""


def _type(value: object) -> str:
    if isinstance(value, dict):
        return "parser.Object"
    if isinstance(value, list):
        return "parser.Array"
    return "parser.String" if isinstance(value, str) else "parser.Value"


def _criterion(item: object) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise PPLError(f"unsupported type for criteria array: {_type(item)}")
    if len(item) != 1:
        raise PPLError("each criteria may only contain a single key and value")
    ((key, value),) = item.items()
    name = str(key).partition("/")[0]
    if name not in CORE_CRITERIA:
        raise PPLError(f"unknown policy criterion: {name}")
    _check_value(name, value)
    return {str(key): value}


def _check_value(name: str, value: object) -> None:
    problem = "error generating criterion rules: "
    if name in STRING_CRITERIA:
        if isinstance(value, dict):
            unknown = sorted(set(value) - STRING_OPS, key=str)
            if unknown:
                raise PPLError(f"{problem}unsupported string matcher operator: {unknown[0]}")
            for op, operand in value.items():
                if op in ("in", "not_in"):
                    if not isinstance(operand, list) or not all(
                        isinstance(item, str) for item in operand
                    ):
                        raise PPLError(f"{problem}{op} matcher requires an array of strings")
                elif not isinstance(operand, str):
                    raise PPLError(f"{problem}unsupported value type: {_type(operand)}")
        elif not isinstance(value, str):
            raise PPLError(f"{problem}unsupported value type: {_type(value)}")
    elif name == "source_ip":
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not items:
            raise PPLError(f"{problem}expected IP or CIDR range")
        for item in items:
            try:
                ipaddress.ip_network(str(item), strict=False)
            except ValueError:
                raise PPLError(f"{problem}expected IP or CIDR range, got: {item}") from None


def _body(action: str, body: object) -> dict[str, list[dict[str, Any]]]:
    if not isinstance(body, dict):
        raise PPLError(f"invalid value for action in rule, expected Object, got {_type(body)}")
    out: dict[str, list[dict[str, Any]]] = {}
    for op in OPERATORS:
        if op not in body:
            continue
        items = body[op]
        if not isinstance(items, list):
            raise PPLError(f'invalid criteria in "{op}"): unsupported type for criteria')
        try:
            out[op] = [_criterion(item) for item in items]
        except PPLError as exc:
            if str(exc).startswith("unknown policy criterion"):
                raise
            raise PPLError(f'invalid criteria in "{op}"): {exc}') from None
    for key in body:
        if key not in (*OPERATORS, "action"):
            raise PPLError(
                f'unsupported conditional "{key}", only and, or, not, nor and action are allowed'
            )
    return out


def _rules(document: object) -> list[Rule]:
    objects = document if isinstance(document, list) else [document]
    if not isinstance(document, (list, dict)):
        raise PPLError(f"invalid rules in policy: unsupported type for rule: {_type(document)}")
    rules: list[Rule] = []
    for obj in objects:
        if not isinstance(obj, dict):
            raise PPLError(
                f"invalid rules in policy: unsupported type for rules array: {_type(obj)}"
            )
        for action in sorted(obj, key=str):
            if action not in ("allow", "deny"):
                raise PPLError(
                    f"invalid rules in policy: invalid action in rule: unsupported action: {action}"
                )
            rules.append({str(action): _body(str(action), obj[action])})
    return rules


def compile_ppl(source: str) -> list[Rule]:
    """The rules of ``source`` (PPL text, YAML or JSON); PPLError if Core would refuse it."""
    if len(source) > _MAX_SOURCE:
        raise PPLError("policy source too large")
    try:
        document = yaml.safe_load(source)
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "invalid YAML"
        raise PPLError(f"yaml: {first}") from None
    except RecursionError:
        raise PPLError("yaml: document nested too deeply") from None
    return _rules(document)


def evaluate_rules(rules: list[Rule], request: Request) -> tuple[bool, bool]:
    """(some allow body matches, some deny body matches) for compiled ``rules``."""
    allows = [r for r in rules if "allow" in r]
    denies = [{"allow": r["deny"]} for r in rules if "deny" in r]
    allowed = zero_evaluate(allows, request, validated=True) if allows else False
    denied = zero_evaluate(denies, request, validated=True) if denies else False
    return allowed, denied
