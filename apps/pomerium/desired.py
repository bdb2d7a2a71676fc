"""What a resource's Zero policy should hold, and how to compare it with what Zero holds.

Pure reads of the database plus pure functions: no HTTP, no writes. ``apps.pomerium.sync``
builds on these; ``manage.py sync_zero --dry-run`` prints them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.conf import settings

from apps import ppl as ppl_lib
from apps.access import targets
from apps.access.models import Grant, Resource
from apps.pomerium import windows

# The managed properties: what the portal owns in a policy and compares on every sync.
MANAGED_KEYS = ("name", "description", "explanation", "remediation", "enforced", "ppl")
MAX_LISTED_RULES = 20  # per list in an audit diff; the digests cover the rest

# A grant's rule: its canonical, hashable key is the rule itself (``ppl.GrantRule``).
RuleKey = ppl_lib.GrantRule


def rule_key(
    email: str, not_before: datetime, expires_at: datetime, criteria: Any = None
) -> RuleKey:
    """A grant's rule as rendered: equal keys render byte-identical rules.

    ``criteria`` are the grant's extra criteria as copied at approval (level, schedule);
    an upgrade changes them, so the key changes and the grant waits for Zero again.

    The email is kept as it is (``First.Last@Corp.com``): Pomerium compares it
    case-sensitively with the identity provider's value, so lower-casing it here would
    write a rule that never matches. Case-insensitive identity is the portal's business
    (apps.accounts), not the rule's.
    """
    return ppl_lib.GrantRule(email, not_before, expires_at, tuple(criteria or []))


def grant_key(grant: Any, now: datetime, caps: frozenset[str]) -> RuleKey | None:
    """The key of the rule ``grant`` (in policy: not revoked, not over) has at ``now`` on a
    target with ``caps``; ``None`` when the policy must not carry it now.

    Where the target closes windows by itself that is the grant's own window and criteria.
    Where the worker does (``apps.pomerium.windows``), the key names the window the rule is in
    the policy for, so it changes at every boundary, and leaves out the criteria the
    target lacks: no ``date`` (``render`` writes none), and the schedule's ``day_of_week``/
    ``time_of_day`` where the worker evaluates the schedule.
    """
    window = windows.grant_window(grant, now, caps)
    if window is None:
        return None
    criteria = list(grant.criteria or [])
    if targets.RECURRING not in caps:
        criteria = windows.strip_schedule_criteria(criteria, grant.schedule)
    return rule_key(grant.email, window.opens, window.closes, criteria)


def wanted_grants(resource: Resource, now: datetime) -> dict[int, RuleKey]:
    """Grant id -> rule key of every grant the policy must carry at ``now``.

    These are ``Grant.objects.in_policy`` (not revoked, window not over; scheduled ones
    included where ``date.after`` keeps them closed until they start), and, on a target
    that cannot close a window by itself, only those whose window is open at ``now``.
    """
    caps = targets.capabilities(resource.cluster)
    rows = (
        Grant.objects.in_policy(resource, now)
        .order_by("pk")
        .only("pk", "email", "not_before", "expires_at", "criteria", "schedule")
    )
    wanted = {}
    for grant in rows:
        key = grant_key(grant, now, caps)
        if key is not None:
            wanted[grant.pk] = key
    return wanted


def dated(resource: Resource) -> bool:
    """Do the resource's grant rules carry their own ``date`` window?"""
    return targets.DATE in targets.capabilities(resource.cluster)


def render(resource: Resource, wanted: Mapping[int, RuleKey]) -> list[dict[str, Any]]:
    """The PPL for the base rules plus the given grant rules (deterministic). On a target
    without ``date`` the grant rules carry the email and the level's criteria only."""
    return ppl_lib.render_policy(resource.base_ppl or [], wanted.values(), dated=dated(resource))


def criteria_registry(resource: Resource) -> frozenset[str]:
    """The criteria the policy engine holding the resource's policy registers, from what
    its target can do (``apps.access.targets``): Zero's and Enterprise's, or Core's."""
    caps = targets.capabilities(resource.cluster)
    if targets.DATE in caps and targets.RECURRING in caps:
        return ppl_lib.CRITERIA_ZERO
    return ppl_lib.CRITERIA_CORE


def refused_rules(wanted: Mapping[int, RuleKey], registry: frozenset[str]) -> dict[int, str]:
    """Grant id -> why Pomerium would refuse its rule, for the grants among ``wanted`` whose
    copied criteria (level, schedule) the target does not accept. One such rule would make
    the whole policy write fail, revocations included, so the sync leaves these out."""
    refused = {}
    for grant_id, rule in wanted.items():
        problems = ppl_lib.criteria_errors(list(rule.criteria), criteria=registry)
        if problems:
            refused[grant_id] = "; ".join(problems[:3])
    return refused


def rule_text(key: RuleKey, *, dated: bool = True) -> str:
    """The canonical JSON of the one rule a grant's key renders (as ``render`` writes it;
    ``dated``: with its ``date`` criterion, see ``dated()``)."""
    return ppl_lib.dumps(ppl_lib.render_policy([], [key], dated=dated)[0])


def desired_policy(resource: Resource, now: datetime) -> list[dict[str, Any]]:
    """The resource's PPL at ``now``: base rules, then one allow rule per grant in policy.

    Same grants and base rules -> byte-identical ``ppl.dumps`` output. No rules at all ->
    ``[ppl.DENY_ALL_RULE]``.
    """
    return render(resource, wanted_grants(resource, now))


def request_link(resource: Resource) -> str:
    """The portal page that files a request for ``resource``, pre-filled.

    Only the resource: Zero's policy ``remediation`` is plain text with no documented
    templating (docs/zero-api.md), so the denied path and method cannot be put into the
    link. The request form pre-selects a level from ``method``/``path`` query parameters
    when someone adds them (docs/ppl.md "Access levels").
    """
    return f"{settings.PORTAL_URL}/requests/new?{urlencode({'resource': resource.slug})}"


def properties(resource: Resource, policy: list[dict[str, Any]]) -> dict[str, Any]:
    """Every PolicyProperties key the portal manages, for ``policy`` (the rendered PPL).

    ``explanation`` and ``remediation`` are what Pomerium shows on its 403 page: they
    send a denied user to the request form for this resource. ``enforced`` is always
    false: the policy protects only the routes it is attached to.
    """
    link = request_link(resource)
    return {
        "name": resource.policy_name,
        "description": (
            f"Managed by jitportal for the resource {resource.slug!r} ({resource.name}). "
            "Do not edit by hand: the portal rewrites this policy from its grants and "
            "overwrites changes made here."
        ),
        "explanation": (
            f"{resource.name} needs a just-in-time access grant, and you have none that is "
            "valid right now."
        ),
        "remediation": f"Request access in the portal: {link}",
        "enforced": False,
        "ppl": policy,
    }


def managed_state(policy: Mapping[str, Any]) -> dict[str, Any]:
    """The managed properties of a policy (ours or Zero's), PPL normalized for comparing."""
    state = {key: policy.get(key) for key in MANAGED_KEYS}
    state["enforced"] = bool(state["enforced"])
    for key in ("name", "description", "explanation", "remediation"):
        state[key] = state[key] or ""
    state["ppl"] = ppl_lib.normalize(policy.get("ppl"))
    return state


def state_digest(state: Mapping[str, Any]) -> str:
    """SHA-256 of a managed state's canonical JSON."""
    return ppl_lib.digest(dict(state))


def _rules(state: Mapping[str, Any]) -> list[str]:
    value = state.get("ppl")
    if isinstance(value, list):
        return [ppl_lib.dumps(rule) for rule in value]
    return [json.dumps(value)]  # text that is not PPL: show it as one "rule"


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """A readable difference for the audit trail: rules added/removed, fields changed.

    Rules are canonical JSON strings, at most ``MAX_LISTED_RULES`` per list (the counts
    are exact).
    """
    old, new = _rules(before), _rules(after)
    added = [rule for rule in new if rule not in old]
    removed = [rule for rule in old if rule not in new]
    return {
        "rules_before": len(old),
        "rules_after": len(new),
        "rules_added_count": len(added),
        "rules_removed_count": len(removed),
        "rules_added": added[:MAX_LISTED_RULES],
        "rules_removed": removed[:MAX_LISTED_RULES],
        "fields_changed": [
            key for key in MANAGED_KEYS if key != "ppl" and before.get(key) != after.get(key)
        ],
    }


def pretty(value: object) -> str:
    """Stable, human-readable JSON (for the command's output and diffs)."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
