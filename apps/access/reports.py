"""Access reports: who had access to a resource during a window, and who has it now.

They read the grants, the system of record for windows; every grant change is also in
the audit trail (``grant.*`` entries), which backs these rows up.

A grant's effective window is ``[not_before, min(expires_at, revoked_at))``: revocation
ends it early, extension moves ``expires_at``. A grant revoked before it started never
gave access and is left out.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import F, Q, QuerySet
from django.db.models.functions import Coalesce, Least
from django.utils import timezone

from apps.audit import chain, names
from apps.audit.export import neutralise
from apps.audit.models import AuditAction
from apps.audit.services import record_now

from .models import Grant, Resource

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
)


@dataclass(frozen=True)
class AccessRow:
    resource: str
    email: str
    access_from: datetime
    access_until: datetime  # effective end: the earlier of expiry and revocation
    state: str
    break_glass: bool
    approved_by: str  # approver emails, "auto-approved (rule)" or "break-glass (self)"
    request_id: int
    grant_id: int
    justification: str
    ticket: str
    revoked_by: str
    revoke_reason: str

    def cells(self) -> list[str]:
        values = [
            self.resource,
            self.email,
            chain.format_time(self.access_from),
            chain.format_time(self.access_until),
            self.state,
            "yes" if self.break_glass else "no",
            self.approved_by,
            str(self.request_id),
            str(self.grant_id),
            self.justification,
            self.ticket,
            self.revoked_by,
            self.revoke_reason,
        ]
        return [neutralise(v) for v in values]


def _grants(resource: Resource | None, among: QuerySet[Grant] | None = None) -> QuerySet[Grant]:
    grants = (
        (Grant.objects.all() if among is None else among)
        .select_related("resource", "request__decided_by", "revoked_by")
        .prefetch_related("request__approvals__approver")
    )
    if resource is not None:
        grants = grants.filter(resource=resource)
    return grants.annotate(
        ends_at=Least("expires_at", Coalesce("revoked_at", "expires_at"))
    ).order_by("not_before", "pk")


_APPROVING = (AuditAction.REQUEST_APPROVAL_RECORDED, AuditAction.REQUEST_APPROVED)


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
        return f"auto-approved ({req.auto_approved_rule.get('group', 'rule')})"
    return ""


def _revoked_by(grant: Grant, trail: dict[str, list[str]]) -> str:
    """Who revoked it, as the trail named them; the row for grants the trail does not cover."""
    labels = trail.get(str(grant.pk))
    if labels:
        return labels[-1]
    return grant.revoked_by.email if grant.revoked_by else ""


def _rows(grants: Iterable[Grant]) -> list[AccessRow]:
    grants = list(grants)
    approving = names.actor_labels(
        "access.accessrequest", [g.request_id for g in grants], _APPROVING
    )
    revoking = names.actor_labels(
        "access.grant", [g.pk for g in grants], [AuditAction.GRANT_REVOKED]
    )
    return [
        AccessRow(
            resource=g.resource.slug,
            email=g.email,
            access_from=g.not_before,
            access_until=g.ends_at,  # type: ignore[attr-defined]
            state=g.state,
            break_glass=g.is_break_glass,
            approved_by=_approved_by(g, approving),
            request_id=g.request_id,
            grant_id=g.pk,
            justification=g.request.justification,
            ticket=g.request.ticket,
            revoked_by=_revoked_by(g, revoking),
            revoke_reason=g.revoke_reason,
        )
        for g in grants
    ]


def who_had_access(
    resource: Resource | None,
    start: datetime,
    end: datetime,
    *,
    among: QuerySet[Grant] | None = None,
) -> list[AccessRow]:
    """Grants whose effective window overlaps ``[start, end)``, earliest first.

    ``among`` limits the report to the grants a viewer may see (``Grant.objects.visible_to``).
    """
    if end <= start:
        raise ValueError("the end of the range must be later than its start")
    grants = _grants(resource, among).filter(
        Q(not_before__lt=end) & Q(ends_at__gt=start) & Q(ends_at__gt=F("not_before"))
    )
    return _rows(grants)


def who_had_access_at(resource: Resource | None, at: datetime) -> list[AccessRow]:
    """Grants whose window contains the instant ``at``."""
    return who_had_access(resource, at, at + timedelta(microseconds=1))


def who_has_access_now(
    resource: Resource | None = None,
    *,
    now: datetime | None = None,
    among: QuerySet[Grant] | None = None,
) -> list[AccessRow]:
    """Open (scheduled or active) grants whose window contains ``now``."""
    now = now or timezone.now()
    return _rows(_grants(resource, among).filter(pk__in=Grant.objects.active_at(now).values("pk")))


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
    among = Grant.objects.visible_to(viewer)
    if start is not None and end is not None:
        report = Report(
            "who_had_access", who_had_access(resource, start, end, among=among), start, end
        )
    else:
        now = timezone.now()
        report = Report(
            "who_has_access_now", who_has_access_now(resource, now=now, among=among), now, None
        )
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
    writer.writerow(REPORT_COLUMNS)
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
        AuditAction.REPORT_VIEWED,
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
