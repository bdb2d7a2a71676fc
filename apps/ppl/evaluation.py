"""PPL evaluation: does a policy let this person in at this moment (``evaluate``), does a
level's criteria allow this method and path (``matches_request``).

Semantics follow Pomerium's generator (see the package docstring): at least one ``allow``
rule matches and no ``deny`` rule does; inside a rule body any operator's term matching is
enough.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from . import DATE_KEYS, OPERATORS, normalize, parse_date_bound


def _match_string(subject: str, matcher: object) -> bool:
    if isinstance(matcher, str):
        return subject == matcher
    if not isinstance(matcher, dict) or not matcher:
        return False
    checks = {
        "is": lambda v: subject == v,
        "not": lambda v: subject != v,
        "in": lambda v: isinstance(v, list) and subject in v,
        "not_in": lambda v: isinstance(v, list) and subject not in v,
        "starts_with": lambda v: isinstance(v, str) and subject.startswith(v),
        "ends_with": lambda v: isinstance(v, str) and subject.endswith(v),
        "contains": lambda v: isinstance(v, str) and v in subject,
    }
    # Several operators in one matcher must all hold (Pomerium ANDs them).
    return all(key in checks and checks[key](value) for key, value in matcher.items())


def matches_request(
    criteria: Iterable[Mapping[str, Any]], *, method: str | None, path: str | None
) -> bool:
    """Could a rule with these extra ``criteria`` let a request with ``method`` and ``path``
    through, as far as those two facts tell?

    ``http_method`` and ``http_path`` are matched (a fact that is not known matches
    nothing); every other criterion is ignored, because it depends on facts not given
    here (who, when, from where). Used to pick the lowest access level that would have
    allowed a request Pomerium denied.
    """
    facts = {"http_method": method, "http_path": path}
    for criterion in criteria:
        for name, value in criterion.items():
            if name not in facts:
                continue
            subject = facts[name]
            if subject is None or not _match_string(subject, value):
                return False
    return True


def _match_list(items: Sequence[str], matcher: object) -> bool:
    if isinstance(matcher, str):
        matcher = {"has": matcher}
    if not isinstance(matcher, dict) or not matcher:
        return False
    checks = {
        "has": lambda v: v in items,
        "is": lambda v: len(items) == 1 and v in items,
        "exclude": lambda v: v not in items,
    }
    return all(key in checks and checks[key](value) for key, value in matcher.items())


def _match_date(at: datetime, matcher: object) -> bool:
    if not isinstance(matcher, dict) or not matcher:
        return False
    for key, value in matcher.items():
        bound = parse_date_bound(value)
        if bound is None:
            return False  # fail closed on a bound we cannot read
        if key == "after" and not at >= bound:
            return False
        if key == "before" and not at < bound:
            return False
        if key not in DATE_KEYS:
            return False
    return True


def _match_criterion(criterion: object, email: str, at: datetime, groups: Sequence[str]) -> bool:
    if not isinstance(criterion, dict) or len(criterion) != 1:
        return False
    (name, value), *_ = criterion.items()
    if name == "accept":
        return True
    if name == "reject":
        return False
    if name == "authenticated_user":
        return bool(email)
    # The simulator has no separate user id: a user is identified by email.
    if name in ("email", "user"):
        return _match_string(email, value)
    if name == "domain":
        return "@" in email and _match_string(email.rsplit("@", 1)[1], value)
    if name == "groups":
        return _match_list(groups, value)
    if name == "date":
        return _match_date(at, value)
    return False  # unknown or request-dependent criteria never match here


def _match_body(body: object, email: str, at: datetime, groups: Sequence[str]) -> bool:
    if not isinstance(body, dict):
        return False
    terms: list[bool] = []
    for operator in OPERATORS:
        criteria = body.get(operator)
        if not isinstance(criteria, list) or not criteria:
            continue
        results = [_match_criterion(c, email, at, groups) for c in criteria]
        if operator == "and":
            terms.append(all(results))
        elif operator == "or":
            terms.append(any(results))
        elif operator == "not":
            terms.append(not any(results))
        else:  # nor
            terms.append(not all(results))
    return any(terms)


def evaluate(ppl: object, email: str, at: datetime, groups: Iterable[str] = ()) -> bool:
    """Would Pomerium let ``email`` (in ``groups``) through at instant ``at``?

    ``ppl`` may be a rule, a list of rules or their JSON/YAML text. Criteria
    that depend on the request (paths, methods, devices, ...) never match.
    ``after`` is inclusive and ``before`` exclusive; Pomerium does not document
    the boundary, so callers must not depend on the exact second. Raises
    ``ValueError`` if ``at`` is naive.
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("evaluate() needs an aware datetime")
    rules = normalize(ppl)
    if not isinstance(rules, list):
        return False
    group_list = list(groups)
    allowed = False
    for rule in rules:
        if not isinstance(rule, dict):
            continue
        if _match_body(rule.get("deny"), email, at, group_list):
            return False  # deny always wins
        if _match_body(rule.get("allow"), email, at, group_list):
            allowed = True
    return allowed
