"""Who is told what, for each domain event: one planner per event, returning rendered messages.

Planners read the current state of the request or grant (the event was emitted after
commit, possibly a while ago) and plan nothing when it no longer applies: no "please
approve" for a request already decided, no "access is live" for a grant already revoked.
They never write; ``services.dispatch`` stores what they return.

=====================  =========================================================  ========
event                  email to                                                   Slack
=====================  =========================================================  ========
request_submitted      approvers of the resource, not the requester or filer      yes
request_decided        the requester (approved, auto-approved, rejected);         yes
                       on auto-approval also the approvers, after the fact
request_waiting        approvers who have not approved yet                        no
grant_live             the grant's user                                           no
expiry_reminder        the grant's user, if they want reminders                   no
grant_revoked          the grant's user, unless they ended it themselves          no
break_glass            every approver of the resource and every superuser         yes
break_glass_refused    every approver of the resource and every superuser         yes
                       (a new activation refused while earlier ones await review)
removal_overdue        every approver of the resource and every superuser         no
                       (a revocation Zero has not confirmed within the threshold)
=====================  =========================================================  ========

"Approvers" are the members of the resource's approver groups; superusers stand in when
there are none (see ``audience.approvers``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.utils import timezone

from apps.access import events, oncall, reach, schedules, stages, targets
from apps.access.durations import duration_label
from apps.access.models import AccessRequest, Grant
from apps.access.states import (
    OPEN_GRANT_STATES,
    RequestKind,
    RequestState,
    SyncStatus,
)
from apps.accounts.timezones import zone_of

from . import audience
from .messages import (
    Message,
    admin_grant_url,
    admin_request_url,
    email,
    extension_url,
    person,
    quote,
    request_url,
    slack,
    slack_escape,
    utc_label,
)

Planner = Callable[..., list[Message]]


def _request(request_id: int | None) -> AccessRequest | None:
    if request_id is None:
        return None
    return (
        AccessRequest.objects.select_related(
            "resource", "requester", "filed_by", "decided_by", "extends_grant"
        )
        .filter(pk=request_id)
        .first()
    )


def _grant(grant_id: int | None) -> Grant | None:
    if grant_id is None:
        return None
    return (
        Grant.objects.select_related("resource", "user", "request", "revoked_by")
        .filter(pk=grant_id)
        .first()
    )


def _grant_of(req: AccessRequest) -> Grant | None:
    return Grant.objects.filter(request=req).first()


def _request_context(req: AccessRequest) -> dict[str, Any]:
    minutes = req.approved_duration_minutes or req.duration_minutes
    return {
        "req": req,
        "resource": req.resource,
        "requester": req.requester,
        "requester_name": person(req.requester),
        "filed_by_other": req.filed_by_id != req.requester_id,
        "filed_by_name": person(req.filed_by),
        "duration": duration_label(req.duration_minutes),
        "approved_duration": duration_label(minutes),
        "is_extension": req.kind == RequestKind.EXTENSION,
        "admin_url": admin_request_url(req),
        "request_url": request_url(req),
        "level_name": req.effective_level.name if req.effective_level else "",
        "level_asked": req.level.name if req.approved_level_id and req.level else "",
        "schedule_text": _schedule_text(req.resource.schedule),
    }


def _schedule_text(schedule: Any) -> str:
    parsed = schedules.parse(schedule) if schedule else None
    return schedules.describe(parsed) if parsed else ""


def _slack_request_lines(req: AccessRequest) -> list[str]:
    lines = [
        f"Duration: {duration_label(req.duration_minutes)}"
        + (f", starting {utc_label(req.start_at)}" if req.start_at else ""),
    ]
    if req.level is not None:
        lines.append(f"Level: {req.level.name}")
    if req.resource.schedule:
        lines.append(f"Schedule: {_schedule_text(req.resource.schedule)}")
    if req.justification:
        lines.append(f"Why: {quote(req.justification)}")
    if req.ticket:
        lines.append(f"Ticket: {quote(req.ticket, 120)}")
    return lines


# --- Requests ------------------------------------------------------------------------------


def request_submitted(*, request_id: int | None = None, **_: Any) -> list[Message]:
    req = _request(request_id)
    if req is None or req.state != RequestState.PENDING:
        return []
    ctx = _request_context(req)
    rid, gid = req.pk, None
    out = [
        email(
            user,
            event=events.REQUEST_SUBMITTED,
            template="request_submitted",
            context=ctx,
            request_id=rid,
            grant_id=gid,
        )
        for user in audience.approvers(req.resource, exclude=[req.requester_id, req.filed_by_id])
    ]
    if req.resource.slack_webhook_url:
        what = "extension of access to" if ctx["is_extension"] else "access to"
        out.append(
            slack(
                req.resource,
                event=events.REQUEST_SUBMITTED,
                summary=slack_escape(
                    f"Request #{req.pk}: {ctx['requester_name']} asks for {what} "
                    f"{req.resource.name}"
                ),
                details=_slack_request_lines(req),
                link=ctx["admin_url"],
                link_label="Review in the portal",
                request_id=rid,
                grant_id=gid,
            )
        )
    return out


def request_decided(*, request_id: int | None = None, **_: Any) -> list[Message]:
    req = _request(request_id)
    if req is None or req.state not in (RequestState.APPROVED, RequestState.REJECTED):
        return []
    grant = req.extends_grant if req.kind == RequestKind.EXTENSION else _grant_of(req)
    ctx = {
        **_request_context(req),
        "grant": grant,
        "auto": req.auto_approved_rule is not None,
        "rule": req.auto_approved_rule or {},
        "rule_who": oncall.who(req.auto_approved_rule or {}),
        "decided_by_name": person(req.decided_by),
        "reason": req.decision_reason,
    }
    rid, gid = req.pk, (grant.pk if grant else None)
    approved = req.state == RequestState.APPROVED
    template = "request_approved" if approved else "request_rejected"
    out = [
        email(
            req.requester,
            event=events.REQUEST_DECIDED,
            template=template,
            context=ctx,
            request_id=rid,
            grant_id=gid,
        )
    ]
    if approved and ctx["auto"]:
        out += [
            email(
                user,
                event=events.REQUEST_DECIDED,
                template="request_auto_approved",
                context=ctx,
                request_id=rid,
                grant_id=gid,
            )
            for user in audience.approvers(req.resource, exclude=[req.requester_id])
        ]
    if req.resource.slack_webhook_url:
        if not approved:
            verdict = f"rejected by {ctx['decided_by_name']}"
        elif ctx["auto"]:
            verdict = f"auto-approved (rule: {ctx['rule_who']})"
        else:
            verdict = f"approved by {ctx['decided_by_name']}"
        details = [f"Duration: {ctx['approved_duration']}"]
        if ctx["level_name"]:
            details.append(f"Level: {ctx['level_name']}")
        if grant is not None and approved:
            details.append(f"Until: {utc_label(grant.expires_at)}")
        if req.decision_reason:
            details.append(f"{'Reason' if not approved else 'Note'}: {quote(req.decision_reason)}")
        out.append(
            slack(
                req.resource,
                event=events.REQUEST_DECIDED,
                summary=slack_escape(
                    f"Request #{req.pk} of {ctx['requester_name']} for {req.resource.name}: "
                    f"{verdict}"
                ),
                details=details,
                link=ctx["admin_url"],
                link_label="Open in the portal",
                request_id=rid,
                grant_id=gid,
            )
        )
    return out


def request_waiting(*, request_id: int | None = None, **_: Any) -> list[Message]:
    req = _request(request_id)
    if req is None or req.state != RequestState.PENDING:
        return []
    approved = set(req.approvals.values_list("approver_id", flat=True))
    ctx = {
        **_request_context(req),
        "approvals": len(approved),
        "approvals_required": sum(
            s.count for s in stages.stages_for(req.resource, req.effective_level)
        ),
    }
    exclude = [req.requester_id, req.filed_by_id, *approved]
    return [
        email(
            user,
            event=events.REQUEST_WAITING,
            template="request_waiting",
            context=ctx,
            request_id=req.pk,
        )
        for user in audience.approvers(req.resource, exclude=exclude)
    ]


# --- Grants --------------------------------------------------------------------------------


def _grant_context(grant: Grant) -> dict[str, Any]:
    return {
        "grant": grant,
        "resource": grant.resource,
        "user_name": person(grant.user),
        "request_url": request_url(grant.request),
        "extension_url": extension_url(grant.resource),
        "level_name": grant.level.name if grant.level else "",
        "schedule_text": _schedule_text(grant.schedule),
        # With a schedule, access really ends when the last window closes.
        "access_ends": grant.access_ends_at(),
    }


def grant_live(*, grant_id: int | None = None, **_: Any) -> list[Message]:
    grant = _grant(grant_id)
    if grant is None or grant.state not in OPEN_GRANT_STATES:
        return []
    return [
        email(
            grant.user,
            event=events.GRANT_LIVE,
            template="grant_live",
            # Confirmed is not the same as open: say what the person can do now, in their
            # zone (a scheduled grant, or one between its recurring windows, opens later).
            context={
                **_grant_context(grant),
                "access": reach.access(grant, now=timezone.now(), zone=zone_of(grant.user)),
            },
            request_id=grant.request_id,
            grant_id=grant.pk,
        )
    ]


def expiry_reminder(*, grant_id: int | None = None, **_: Any) -> list[Message]:
    grant = _grant(grant_id)
    if grant is None or grant.state not in OPEN_GRANT_STATES or not grant.user.notify_expiry:
        return []
    return [
        email(
            grant.user,
            event=events.EXPIRY_REMINDER,
            template="expiry_reminder",
            context=_grant_context(grant),
            request_id=grant.request_id,
            grant_id=grant.pk,
            # Once per grant end: an extended grant earns a new reminder.
            occasion=grant.expires_at.isoformat(),
        )
    ]


def grant_revoked(*, grant_id: int | None = None, **_: Any) -> list[Message]:
    grant = _grant(grant_id)
    if grant is None or grant.revoked_at is None or grant.revoked_by_id == grant.user_id:
        return []
    ctx = {**_grant_context(grant), "revoked_by_name": person(grant.revoked_by)}
    return [
        email(
            grant.user,
            event=events.GRANT_REVOKED,
            template="grant_revoked",
            context=ctx,
            request_id=grant.request_id,
            grant_id=grant.pk,
        )
    ]


def _tell_approvers_of_break_glass(
    grant: Grant,
    *,
    event: str,
    template: str,
    ctx: dict[str, Any],
    summary: str,
    details: list[str],
    occasion: str = "",
) -> list[Message]:
    """Email every approver of the grant's resource and every superuser (not its holder),
    and post to the resource's Slack: what break-glass activations and refusals both do."""
    rid, gid = grant.request_id, grant.pk
    out = [
        email(
            user,
            event=event,
            template=template,
            context=ctx,
            request_id=rid,
            grant_id=gid,
            occasion=occasion,
        )
        for user in audience.approvers(
            grant.resource, exclude=[grant.user_id], with_superusers=True
        )
    ]
    if grant.resource.slack_webhook_url:
        out.append(
            slack(
                grant.resource,
                event=event,
                summary=summary,
                details=details,
                link=ctx["admin_url"],
                link_label="Review in the portal",
                request_id=rid,
                grant_id=gid,
                occasion=occasion,
            )
        )
    return out


def break_glass(*, grant_id: int | None = None, **_: Any) -> list[Message]:
    grant = _grant(grant_id)
    if grant is None or not grant.is_break_glass:
        return []
    ctx = {
        **_grant_context(grant),
        "justification": grant.request.justification,
        "duration": duration_label(grant.request.duration_minutes),
        "admin_url": admin_grant_url(grant),
    }
    return _tell_approvers_of_break_glass(
        grant,
        event=events.BREAK_GLASS,
        template="break_glass",
        ctx=ctx,
        summary=":rotating_light: "
        + slack_escape(
            f"Break-glass: {ctx['user_name']} activated emergency access to {grant.resource.name}"
        ),
        details=[
            f"Duration: {ctx['duration']}, until {utc_label(grant.expires_at)}",
            f"Why: {quote(grant.request.justification)}",
            "Needs review by an approver.",
        ],
    )


def break_glass_refused(
    *, grant_id: int | None = None, attempt: str = "", **_: Any
) -> list[Message]:
    """Someone tried break-glass again while ``grant_id`` (their latest) awaits review: the
    approvers are told of every attempt (``attempt``, its time, tells them apart)."""
    grant = _grant(grant_id)
    if grant is None or not grant.is_break_glass:
        return []
    waiting = Grant.objects.needing_review().filter(user=grant.user, resource=grant.resource)
    ctx = {
        **_grant_context(grant),
        "admin_url": admin_grant_url(grant),
        "unreviewed": waiting.count(),
    }
    return _tell_approvers_of_break_glass(
        grant,
        event=events.BREAK_GLASS_REFUSED,
        template="break_glass_refused",
        ctx=ctx,
        summary=":no_entry: "
        + slack_escape(
            f"Break-glass refused: {ctx['user_name']} tried emergency access to "
            f"{grant.resource.name} again; earlier activations are not reviewed"
        ),
        details=[f"Unreviewed break-glass grants: {ctx['unreviewed']}"],
        occasion=attempt,
    )


def removal_overdue(*, grant_id: int | None = None, **_: Any) -> list[Message]:
    """A revocation Zero has not confirmed in time: every approver must know the user may
    still get in. Nothing is planned once Zero confirmed the removal meanwhile."""
    grant = _grant(grant_id)
    if grant is None or grant.sync_status == SyncStatus.REMOVED:
        return []
    # An expiry is a removal only where the worker, not Pomerium, closes the rule.
    if grant.revoked_at is None and targets.closes_by_itself(grant.resource.cluster):
        return []
    cluster = grant.resource.cluster
    ctx = {
        **_grant_context(grant),
        "admin_url": admin_grant_url(grant),
        "pomerium": targets.product(cluster),
        "enforcer": targets.enforcer(cluster),
        "console": targets.console(cluster),
    }
    return [
        email(
            user,
            event=events.REMOVAL_OVERDUE,
            template="removal_overdue",
            context=ctx,
            request_id=grant.request_id,
            grant_id=grant.pk,
        )
        for user in audience.approvers(grant.resource, with_superusers=True)
    ]


def nothing(**_: Any) -> list[Message]:
    """Events only a request's Slack message follows (apps.slack): no mail, no webhook."""
    return []


PLANNERS: dict[str, Planner] = {
    events.REQUEST_SUBMITTED: request_submitted,
    events.REQUEST_DECIDED: request_decided,
    events.REQUEST_WAITING: request_waiting,
    events.GRANT_LIVE: grant_live,
    events.EXPIRY_REMINDER: expiry_reminder,
    events.GRANT_REVOKED: grant_revoked,
    events.BREAK_GLASS: break_glass,
    events.BREAK_GLASS_REFUSED: break_glass_refused,
    events.REMOVAL_OVERDUE: removal_overdue,
    events.APPROVAL_RECORDED: nothing,
    events.REQUEST_CANCELLED: nothing,
    events.REQUEST_EXPIRED: nothing,
    events.GRANT_EXPIRED: nothing,
}
