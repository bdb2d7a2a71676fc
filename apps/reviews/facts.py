"""The facts of one resource that a campaign asks its reviewers to certify.

Per resource, one item for each of:

* each group that may request it (with its levels), or "everyone signed in" when the
  resource names no requester group;
* each approver group; each break-glass group; each auto-approval rule;
* each standing base rule (``base_ppl``);
* each grant whose window is longer than the campaign's threshold and that overlapped the
  period since the resource's last review, and each break-glass use in that period.

Each fact says whom it is about (``groups``, ``emails``), which is what the self-review
rule compares with the reviewer. Reviewers: the campaign's named group when it has one;
else the resource's approver groups, except for the facts about approver groups, which
the superusers review (approvers never certify their own approving).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import F, Q

from apps.access.durations import duration_label
from apps.access.models import Grant, Resource
from apps.ppl import dumps

from .models import ItemKind
from .names import grant_emails

SUMMARY_LIMIT = 500


@dataclass(frozen=True)
class Fact:
    kind: str
    subject: Any
    summary: str
    groups: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    grant: Grant | None = None


def _clip(text: str) -> str:
    return text if len(text) <= SUMMARY_LIMIT else text[: SUMMARY_LIMIT - 1] + "…"


def rule_people(rule: Any) -> tuple[list[str], list[str]]:
    """The groups and emails a PPL rule names (``groups``/``claim/groups``, ``email``/
    ``user``), at any depth: whom a standing rule is about."""
    groups: set[str] = set()
    emails: set[str] = set()

    def strings(value: Any) -> Iterator[str]:
        if isinstance(value, str):
            yield value
        elif isinstance(value, list):
            for item in value:
                yield from strings(item)
        elif isinstance(value, dict):
            for item in value.values():
                yield from strings(item)

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            for key, value in node.items():
                if key in ("groups", "claim/groups"):
                    groups.update(strings(value))
                elif key in ("email", "user"):
                    emails.update(strings(value))
                else:
                    walk(value)

    walk(rule)
    return sorted(groups), sorted(emails)


def _levels(resource: Resource) -> str:
    names = [level.name for level in resource.levels.order_by("rank")]
    return f" (levels: {', '.join(names)})" if names else ""


def configuration(resource: Resource) -> list[Fact]:
    """Who may request, who approves, break-glass, auto-approval, standing rules."""
    levels = _levels(resource)
    found: list[Fact] = []
    if resource.requester_groups:
        for group in sorted(set(resource.requester_groups)):
            found.append(
                Fact(ItemKind.REQUESTER_GROUP, group, f"Group {group} may request{levels}", [group])
            )
    else:
        found.append(Fact(ItemKind.EVERYONE, "everyone", f"Everyone signed in may request{levels}"))
    for group in sorted(set(resource.approver_groups)):
        found.append(
            Fact(
                ItemKind.APPROVER_GROUP,
                group,
                f"Group {group} approves requests ({resource.approvals_required} approval(s) "
                "needed)",
                [group],
            )
        )
    for group in sorted(set(resource.break_glass_groups)):
        found.append(
            Fact(
                ItemKind.BREAK_GLASS_GROUP,
                group,
                f"Group {group} may use break-glass (up to "
                f"{duration_label(resource.break_glass_max_minutes)})",
                [group],
            )
        )
    for rule in resource.auto_approve_rules:
        found.append(
            Fact(
                ItemKind.AUTO_APPROVE_RULE,
                rule,
                f"Group {rule['group']} is approved automatically for up to "
                f"{duration_label(rule['max_minutes'])}",
                [rule["group"]],
            )
        )
    for rule in resource.base_ppl:
        groups, emails = rule_people(rule)
        found.append(
            Fact(ItemKind.BASE_RULE, rule, _clip(f"Standing rule: {dumps(rule)}"), groups, emails)
        )
    return found


def grants(resource: Resource, *, since: datetime, now: datetime, long_minutes: int) -> list[Fact]:
    """Grants longer than ``long_minutes`` that overlapped [since, now), and break-glass
    uses that began in it; the holder's email as the trail recorded it."""
    long = (
        Grant.objects.filter(resource=resource, not_before__lt=now, expires_at__gt=since)
        .filter(expires_at__gt=F("not_before") + timedelta(minutes=long_minutes))
        .exclude(is_break_glass=True)
    )
    glass = Grant.objects.filter(resource=resource, is_break_glass=True).filter(
        Q(created_at__gte=since) & Q(created_at__lt=now)
    )
    rows = list(long.select_related("level").order_by("not_before", "pk"))
    rows += list(glass.select_related("level").order_by("created_at", "pk"))
    emails = grant_emails([g.pk for g in rows])
    found = []
    for grant in rows:
        email = emails.get(grant.pk, grant.email)
        minutes = int((grant.expires_at - grant.not_before).total_seconds() // 60)
        window = f"{grant.not_before:%Y-%m-%d %H:%M} to {grant.expires_at:%Y-%m-%d %H:%M} UTC"
        level = f" at {grant.level.name}" if grant.level else ""
        subject = {"grant": grant.pk, "email": email}
        if grant.is_break_glass:
            kind, text = ItemKind.BREAK_GLASS_USE, f"Break-glass by {email}{level}, {window}"
        else:
            kind = ItemKind.LONG_GRANT
            text = f"{email} held access{level} for {duration_label(minutes)}, {window}"
        found.append(
            Fact(kind, subject, _clip(f"{text} ({grant.get_state_display()})"), [], [email], grant)
        )
    return found


def reviewer_groups(resource: Resource, kind: str, named_group: str) -> list[str]:
    if named_group:
        return [named_group]
    if kind == ItemKind.APPROVER_GROUP:
        return []  # the superusers
    return sorted(set(resource.approver_groups))
