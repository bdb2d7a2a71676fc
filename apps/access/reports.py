"""Access reports: who had access to a resource during a window, and who has it now.

They read the grants, the system of record for windows; every grant change is also in
the audit trail (``grant.*`` entries), which backs these rows up.

**Confirmed enforcement times.** A grant gives access from when Pomerium enforces it
(its start, or the rule's first confirmation if that came later) until Pomerium confirmed
the rule gone, not until someone clicked "revoke": a revocation during a Zero outage
leaves the person in until the removal is confirmed. Where the rule carries its own
``date`` window (``targets.closes_by_itself``), Pomerium closes it at the grant's end by
itself. An unconfirmed removal is listed as still having access, marked "revocation not
yet enforced" (``access_until`` empty). A grant whose window closed before it ever opened
gave no access and is left out.

"Who has access now" also lists everyone the resources' **base rules** let in (each
person, group, domain or pattern, with the term's other criteria) and every **level's
criteria** with where they come from. Groups are named as groups: Pomerium asks the
identity provider at each request, so the portal adds, per group, the members it saw
at their last sign-in, and says that this list may be incomplete.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from apps.accounts.models import User
from apps.accounts.roles import claim_group_name
from apps.audit import chain, names
from apps.audit.export import neutralise
from apps.audit.services import record_now
from apps.kit.text import reveal

from . import base_rules, oncall, reach, targets
from .actions import AccessAction
from .models import Grant, Resource
from .states import GrantState, SyncStatus

REPORT_COLUMNS = (
    "resource",
    "email",
    "access_from",
    "access_until",
    "state",
    "break_glass",
    "approved_by",
    "request_id",
    "grant_id",
    "justification",
    "ticket",
    "revoked_by",
    "revoke_reason",
    # Added with confirmed enforcement times and base rules (appended: the order is stable).
    "source",
    "group",
    "criteria",
    "criteria_from",
    "enforcement",
)
# Exports stay UTC and say so in their header.
CSV_HEADER = tuple(
    f"{name}_utc" if name in ("access_from", "access_until") else name for name in REPORT_COLUMNS
)

GRANT = "grant"
BASE_RULE = "base rule"
LEVEL = "level"
NOT_ENFORCED = reach.NOT_ENFORCED  # "revocation not yet enforced"


@dataclass(frozen=True)
class AccessRow:
    resource: str
    email: str
    access_from: datetime | None  # confirmed start; none for a base rule or a level
    access_until: datetime | None  # confirmed end; none while the person may still get in
    state: str
    break_glass: bool
    approved_by: str  # approver emails, "auto-approved (rule)" or "break-glass (self)"
    request_id: int | None
    grant_id: int | None
    justification: str
    ticket: str
    revoked_by: str
    revoke_reason: str
    source: str = GRANT  # grant, base rule or level
    group: str = ""  # the group a base rule names (a member's row names it too)
    criteria: str = ""  # the extra criteria, as JSON
    criteria_from: str = ""  # where they come from
    enforcement: str = ""  # what Pomerium confirmed, in words

    def cells(self) -> list[str]:
        values = [
            self.resource,
            self.email,
            chain.format_time(self.access_from) if self.access_from else "",
            chain.format_time(self.access_until) if self.access_until else "",
            self.state,
            "yes" if self.break_glass else "no",
            self.approved_by,
            "" if self.request_id is None else str(self.request_id),
            "" if self.grant_id is None else str(self.grant_id),
            self.justification,
            self.ticket,
            self.revoked_by,
            self.revoke_reason,
            self.source,
            self.group,
            self.criteria,
            self.criteria_from,
            self.enforcement,
        ]
        # A report people open in a spreadsheet: formulas neutralised, hidden characters
        # shown as [U+202E] so no cell reads as something else (the audit exports, which
        # are evidence and re-verified, keep exact bytes instead; docs/approving.md).
        return [neutralise(reveal(v)) for v in values]


# --- Grants: their enforced windows ----------------------------------------------------


@dataclass(frozen=True)
class Enforced:
    """When a grant let its holder in, as far as Pomerium confirmed it."""

    start: datetime
    end: datetime | None  # None: the removal is not confirmed; they may still get in
    words: str


def enforced_window(grant: Grant, now: datetime) -> Enforced:
    """The grant's access as Pomerium enforced it (see the module docstring)."""
    closes = targets.closes_by_itself(grant.resource.cluster)
    start = max(grant.not_before, grant.live_at) if grant.live_at else grant.not_before
    confirmed = (
        f"enforced from {chain.format_time(start)}"
        if grant.live_at
        else "Pomerium never confirmed the rule"
    )
    ended = grant.state in (GrantState.REVOKED, GrantState.EXPIRED) or grant.expires_at <= now
    if grant.sync_status == SyncStatus.REMOVED and grant.removed_at is not None:
        end = min(grant.removed_at, grant.expires_at) if closes else grant.removed_at
        return Enforced(start, end, f"{confirmed}; removal confirmed {chain.format_time(end)}")
    if not ended or (closes and grant.expires_at <= now):
        # Open, or closed by the rule's own date window in Pomerium.
        return Enforced(start, grant.expires_at, confirmed)
    if grant.state == GrantState.REVOKED:
        return Enforced(start, None, f"{confirmed}; {NOT_ENFORCED}")
    return Enforced(start, None, f"{confirmed}; removal not yet confirmed")


def _grants(resource: Resource | None, among: QuerySet[Grant] | None = None) -> QuerySet[Grant]:
    grants = (
        (Grant.objects.all() if among is None else among)
        .select_related("resource", "level", "request__decided_by", "revoked_by")
        .prefetch_related("request__approvals__approver")
    )
    if resource is not None:
        grants = grants.filter(resource=resource)
    return grants.order_by("not_before", "pk")


def _may_reach(start: datetime) -> Q:
    """Grants whose access may last past ``start``: still open, or removal not confirmed,
    or confirmed after it (the exact window is worked out per grant)."""
    return Q(expires_at__gt=start) | ~Q(sync_status=SyncStatus.REMOVED) | Q(removed_at__gt=start)


_APPROVING = (AccessAction.REQUEST_APPROVAL_RECORDED, AccessAction.REQUEST_APPROVED)


def _approved_by(grant: Grant, trail: dict[str, list[str]]) -> str:
    """Approvers as the trail named them when they approved (a renamed or deleted person
    reads as they were then); the request's current rows for grants the trail does not
    cover (written before it recorded approvals)."""
    req = grant.request
    if grant.is_break_glass:
        return "break-glass (self)"
    approvers = [label for label in trail.get(str(req.pk), []) if label != "system"]
    if not approvers:
        approvers = [a.approver.email for a in req.approvals.all()]
        if req.decided_by is not None and req.decided_by.email not in approvers:
            approvers.append(req.decided_by.email)
    if approvers:
        return ", ".join(approvers)
    if req.auto_approved_rule:
        rule = req.auto_approved_rule
        return f"auto-approved ({rule.get('group') or oncall.who(rule)})"
    return ""


def _criteria_from(grant: Grant) -> str:
    parts = []
    if grant.level is not None:
        parts.append(f"level {grant.level.slug}, as approved")
    if grant.schedule:
        parts.append("the resource's schedule, as approved")
    return "; ".join(parts)


def _revoked_by(grant: Grant, trail: dict[str, list[str]]) -> str:
    """Who revoked it, as the trail named them; the row for grants the trail does not cover."""
    labels = trail.get(str(grant.pk))
    if labels:
        return labels[-1]
    return grant.revoked_by.email if grant.revoked_by else ""


def _rows(found: list[tuple[Grant, Enforced, str]]) -> list[AccessRow]:
    """The rows of grants with their enforced windows (and, optionally, other words for
    the enforcement column). Approvers and revokers are named as the trail named them: two
    queries for all the grants."""
    approving = names.actor_labels(
        "access.accessrequest", [g.request_id for g, _, _ in found], _APPROVING
    )
    revoking = names.actor_labels(
        "access.grant", [g.pk for g, _, _ in found], [AccessAction.GRANT_REVOKED]
    )
    return [
        AccessRow(
            resource=grant.resource.slug,
            email=grant.email,
            access_from=enforced.start,
            access_until=enforced.end,
            state=grant.state,
            break_glass=grant.is_break_glass,
            approved_by=_approved_by(grant, approving),
            request_id=grant.request_id,
            grant_id=grant.pk,
            justification=grant.request.justification,
            ticket=grant.request.ticket,
            revoked_by=_revoked_by(grant, revoking),
            revoke_reason=grant.revoke_reason,
            source=GRANT,
            criteria=json.dumps(grant.criteria, sort_keys=True) if grant.criteria else "",
            criteria_from=_criteria_from(grant),
            enforcement=words or enforced.words,
        )
        for grant, enforced, words in found
    ]


def who_had_access(
    resource: Resource | None,
    start: datetime,
    end: datetime,
    *,
    among: QuerySet[Grant] | None = None,
    now: datetime | None = None,
) -> list[AccessRow]:
    """Grants whose enforced window overlaps ``[start, end)``, earliest first.

    ``among`` limits the report to the grants a viewer may see (``Grant.objects.restrict``).
    """
    if end <= start:
        raise ValueError("the end of the range must be later than its start")
    now = now or timezone.now()
    found = []
    for grant in _grants(resource, among).filter(Q(not_before__lt=end) & _may_reach(start)):
        enforced = enforced_window(grant, now)
        until = enforced.end or max(now, end)
        if enforced.start < end and until > start and until > enforced.start:
            found.append((grant, enforced, ""))
    return _rows(found)


def who_had_access_at(resource: Resource | None, at: datetime) -> list[AccessRow]:
    """Grants whose enforced window contains the instant ``at``."""
    return who_had_access(resource, at, at + timedelta(microseconds=1))


def who_has_access_now(
    resource: Resource | None = None,
    *,
    now: datetime | None = None,
    among: QuerySet[Grant] | None = None,
    resources: QuerySet[Resource] | None = None,
) -> list[AccessRow]:
    """Everyone Pomerium lets in now: the grants whose enforced window contains ``now``
    (a revocation not yet enforced included, and marked), then the base rules' subjects
    and the levels' criteria of ``resource`` (or of ``resources``, default every one)."""
    now = now or timezone.now()
    found = []
    for grant in _grants(resource, among).filter(Q(not_before__lte=now) & _may_reach(now)):
        enforced = enforced_window(grant, now)
        if enforced.start <= now and (enforced.end is None or enforced.end > now):
            answer = reach.access(grant, now=now)
            found.append((grant, enforced, f"{enforced.words}; now: {answer.label}"))
    rows = _rows(found)
    if resource is not None:
        scope: Iterable[Resource] = [resource]
    else:
        scope = (Resource.objects.all() if resources is None else resources).order_by("slug")
    for each in scope:
        rows.extend(_base_rule_rows(each))
        rows.extend(_level_rows(each))
    return rows


# --- Base rules and levels ----------------------------------------------------------------


def _static_row(resource: Resource, **fields: Any) -> AccessRow:
    return AccessRow(
        resource=resource.slug,
        email=fields.pop("email", ""),
        access_from=None,
        access_until=None,
        state=fields.pop("state"),
        break_glass=False,
        approved_by="",
        request_id=None,
        grant_id=None,
        justification="",
        ticket="",
        revoked_by="",
        revoke_reason="",
        **fields,
    )


def _members(group: str) -> list[str]:
    """The portal's people whose last sign-in carried ``group``."""
    return sorted(
        User.objects.filter(is_active=True, groups__name=claim_group_name(group))
        .exclude(email="")
        .values_list("email", flat=True)
    )


def _base_rule_rows(resource: Resource) -> list[AccessRow]:
    rows = []
    for subject in base_rules.subjects(resource.base_ppl):
        common = {
            "state": f"base rule ({subject.action})",
            "source": BASE_RULE,
            "criteria": subject.conditions_text,
            "criteria_from": f"base rule {subject.rule} of {resource.slug}",
        }
        if subject.kind == base_rules.PERSON:
            rows.append(_static_row(resource, email=subject.value, enforcement="always", **common))
        elif subject.kind == base_rules.GROUP:
            members = _members(subject.value)
            rows.append(
                _static_row(
                    resource,
                    group=subject.value,
                    enforcement=(
                        f"group {subject.value}: whoever the identity provider puts in it; "
                        f"{len(members)} member(s) seen at their last sign-in (may be incomplete)"
                    ),
                    **common,
                )
            )
            rows.extend(
                _static_row(
                    resource,
                    email=email,
                    group=subject.value,
                    enforcement=f"member of {subject.value} at their last sign-in",
                    **common,
                )
                for email in members
            )
        else:
            rows.append(
                _static_row(
                    resource,
                    group=subject.value if subject.kind != base_rules.RULE else "",
                    enforcement=f"{subject.kind}: {subject.value}".rstrip(": "),
                    **common,
                )
            )
    return rows


def _level_rows(resource: Resource) -> list[AccessRow]:
    return [
        _static_row(
            resource,
            state="level",
            source=LEVEL,
            email="",
            criteria=json.dumps(level.criteria, sort_keys=True) if level.criteria else "",
            criteria_from=f"level {level.slug} ({level.name}) of {resource.slug}",
            enforcement="ANDed into every grant rule at this level",
        )
        for level in resource.levels.all()
    ]


@dataclass(frozen=True)
class Report:
    """One report run: its name, the rows, and the window it covered."""

    name: str
    rows: list[AccessRow]
    start: datetime
    end: datetime | None


def run_report(
    viewer: Any,
    resource: Resource | None,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    via: str,
    fmt: str,
) -> Report:
    """Run "who had access between start and end" (both given) or "who has access now"
    (neither), over the grants ``viewer`` may see, and audit the viewing. The one place
    both the admin and the API run reports, so they cannot drift apart."""
    among = Grant.objects.restrict(viewer)
    if start is not None and end is not None:
        report = Report(
            "who_had_access", who_had_access(resource, start, end, among=among), start, end
        )
    else:
        now = timezone.now()
        rows = who_has_access_now(
            resource, now=now, among=among, resources=Resource.objects.restrict(viewer)
        )
        report = Report("who_has_access_now", rows, now, None)
    record_report(
        actor=viewer,
        report=report.name,
        resource=resource,
        start=report.start,
        end=report.end,
        rows=len(report.rows),
        via=via,
        fmt=fmt,
    )
    return report


def to_csv(rows: Iterable[AccessRow]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    writer.writerows(row.cells() for row in rows)
    return buffer.getvalue()


def record_report(
    *,
    actor: object,
    report: str,
    resource: Resource | None,
    start: datetime | None,
    end: datetime | None,
    rows: int,
    via: str,
    fmt: str = "html",
) -> None:
    """Audit that someone looked at an access report (its own transaction)."""
    record_now(
        AccessAction.REPORT_VIEWED,
        actor=actor,
        resource_slug=resource.slug if resource else "",
        details={
            "report": report,
            "resource": resource.slug if resource else None,
            "start": chain.format_time(start) if start else None,
            "end": chain.format_time(end) if end else None,
            "rows": rows,
            "format": fmt,
            "via": via,
        },
    )
