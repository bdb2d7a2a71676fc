"""Every state change of requests and grants.

Each public function is one transaction: it locks the rows it changes (request → grant →
resource, always in that order, before the first audit write), checks the rules, writes
the new state and its audit entries, and schedules side effects (the Zero sync,
notifications) with ``transaction.on_commit`` so a worker never sees a rolled-back row.
A double click, two approvers at once, or a task delivered twice does no harm: the second
caller finds the row already moved on and gets ``IllegalTransition``.

All functions take the actor as a keyword and raise ``AccessError`` subclasses with a
sentence a person can read.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from apps.accounts.emails import same_person
from apps.accounts.timezones import stamp
from apps.audit import services as audit
from apps.audit.models import AuditAction
from apps.audit.services import record
from apps.kit.text import hidden_problem

from . import events, oncall, quorum, schedules, stages
from .actions import AccessAction
from .durations import duration_label
from .models import AccessLevel, AccessRequest, Approval, Grant, GrantExtension, Resource
from .states import (
    OPEN_GRANT_STATES,
    AccessError,
    Conflict,
    GrantState,
    IllegalTransition,
    NotAllowed,
    OutsideWindow,
    PolicyViolation,
    RequestKind,
    RequestState,
    SyncStatus,
    check_transition,
    transition,
)
from .sync import request_sync

if TYPE_CHECKING:
    from apps.accounts.models import User

__all__ = [
    "AccessError",
    "approve_request",
    "break_glass",
    "cancel_request",
    "expire_due",
    "extend_grant",
    "mark_reviewed",
    "reject_request",
    "revoke_grant",
    "submit_on_behalf",
    "submit_request",
]

MAX_TEXT = 4000


def _lock_request(req: AccessRequest) -> AccessRequest:
    return (
        AccessRequest.objects.select_for_update()
        .select_related("resource", "requester")
        .get(pk=req.pk)
    )


def _lock_grant(grant: Grant) -> Grant:
    return (
        # The level is read, not locked (and a nullable join cannot be locked).
        Grant.objects.select_for_update(of=("self", "resource", "user"))
        .select_related("resource", "user", "level")
        .get(pk=grant.pk)
    )


def _check_text(value: str, name: str) -> str:
    value = (value or "").strip()
    if len(value) > MAX_TEXT:
        raise PolicyViolation(f"The {name} is too long (at most {MAX_TEXT} characters).")
    problem = hidden_problem(value)
    if problem is not None:
        raise PolicyViolation(f"The {name} {problem}.")
    return value


def _request_details(req: AccessRequest) -> dict[str, Any]:
    details = {
        "requester": req.requester.email,
        "resource": req.resource.slug,
        "kind": req.kind,
        "duration_minutes": req.duration_minutes,
        "start_at": req.start_at.isoformat() if req.start_at else None,
        "justification": req.justification,
        "ticket": req.ticket,
    }
    # Only resources with levels or a schedule say so: the rows of the others stay as they were.
    if req.level is not None:
        details["level"] = req.level.slug
    if req.resource.schedule:
        details["schedule"] = req.resource.schedule
    return details


def require_active(resource: Resource, refused: str) -> None:
    """The one check that a resource is not archived, on every path that would give access:
    submitting, deciding, approving (and auto-approving), extending, break-glass.
    ``refused`` completes "<name> is archived: ..." (e.g. "it takes no requests")."""
    if not resource.is_active:
        raise PolicyViolation(f"{resource.name} is archived: {refused}.")


def grant_criteria(level: AccessLevel | None, schedule: dict[str, Any] | None) -> list[Any]:
    """The extra PPL criteria a grant's rule carries: the level's, then the schedule's.

    Copied onto the grant when it is approved, so the rendered rule stays what was
    approved when an admin edits the level later.
    """
    extra = [dict(c) for c in (level.criteria if level is not None else [])]
    parsed = schedules.parse(schedule)
    if parsed is not None:
        extra.extend(schedules.criteria(parsed))
    return extra


def _check_level(resource: Resource, level: AccessLevel | None) -> AccessLevel | None:
    """The level a request at ``resource`` asks for.

    A request that names none on a resource with levels asks for the highest: what the
    resource granted before it had levels, so older clients keep working. Approvers see
    the level and may lower it; its own quorum and auto-approval rules apply.
    """
    levels = list(resource.levels.all())
    if not levels:
        if level is not None:
            raise PolicyViolation(f"{resource.name} has no access levels.")
        return None
    if level is None:
        return levels[-1]
    if level.resource_id != resource.pk:
        raise PolicyViolation(f"That access level does not belong to {resource.name}.")
    return level


# --- Submitting ----------------------------------------------------------------------------


def _validate_submission(
    *,
    requester: User,
    resource: Resource,
    duration_minutes: int,
    justification: str,
    ticket: str,
    start_at: datetime | None,
    now: datetime,
    offered_only: bool = True,
    level: AccessLevel | None = None,
) -> None:
    require_active(resource, "it takes no requests")
    if not requester.email:
        raise PolicyViolation("Your account has no email address, which Pomerium rules need.")
    if not isinstance(duration_minutes, int) or duration_minutes <= 0:
        raise PolicyViolation("Choose how long you need access.")
    if duration_minutes > resource.max_duration_minutes:
        raise PolicyViolation(
            f"{resource.name} allows at most {resource.max_duration_minutes} minutes."
        )
    if level is not None and duration_minutes > resource.max_minutes(level):
        raise PolicyViolation(
            f"{resource.name} allows at most {resource.max_minutes(level)} minutes "
            f"at the level {level.name}."
        )
    if offered_only and duration_minutes not in resource.duration_choices:
        raise PolicyViolation(
            f"Choose one of the durations offered for {resource.name}: "
            + ", ".join(duration_label(m) for m in sorted(set(resource.duration_choices)))
            + "."
        )
    if resource.justification_required and len(justification) < resource.justification_min_length:
        raise PolicyViolation(
            f"Say why you need access (at least {resource.justification_min_length} characters)."
        )
    if resource.ticket_required and not ticket:
        raise PolicyViolation(f"{resource.name} needs a ticket reference.")
    if start_at is not None:
        if not resource.allow_scheduled:
            raise PolicyViolation(f"{resource.name} only grants access starting now.")
        if start_at <= now:
            raise PolicyViolation("A scheduled start must be in the future.")
        if start_at > now + timedelta(days=resource.max_schedule_ahead_days):
            raise PolicyViolation(
                f"A start can be at most {resource.max_schedule_ahead_days} days ahead."
            )


def _refuse_outside_window(resource: Resource, now: datetime) -> None:
    """A request to start now on a resource with a recurring window is refused while the
    window is closed (``OutsideWindow``), naming the next opening: approved as asked, it
    would be a grant Pomerium denies until then. The person may ask to start then."""
    schedule = resource.parsed_schedule()
    if schedule is None:
        return
    state = schedules.state_at(schedule, now, now, now + timedelta(days=8))
    if state is None or state[0]:
        return
    opens = state[1]
    at = stamp(opens, schedule.zone)
    then = (
        f"Ask to start then ({schedules.rfc3339(opens)})."
        if resource.allow_scheduled
        else "Ask again then."
    )
    raise OutsideWindow(
        f"{resource.name} is open only {schedules.describe(schedule)}, and no window is open "
        f"now. The next window opens {at}. {then}",
        opens_at=opens,
    )


def _ask_on_call(
    resource: Resource, requester: User, now: datetime
) -> tuple[dict[tuple[str, str], oncall.OnCallEntry | None], dict[tuple[str, str], str]]:
    """Ask each provider named by an on-call rule of ``resource`` (its levels included)
    whether ``requester`` is on call now: the entries found, and why a provider could not
    say (``oncall.Unreachable``)."""
    rules = list(resource.auto_approve_rules or [])
    for level in resource.levels.all():
        rules += list(level.auto_approve_rules or [])
    answers: dict[tuple[str, str], oncall.OnCallEntry | None] = {}
    unreachable: dict[tuple[str, str], str] = {}
    for rule in rules:
        where = oncall.rule_schedule(rule)
        if where is None or where in answers or where in unreachable:
            continue
        try:
            answers[where] = oncall.lookup(*where, requester.email, now=now)
        except oncall.Unreachable as exc:
            unreachable[where] = str(exc)
    return answers, unreachable


def _on_call_unasked(
    resource: Resource, level: AccessLevel | None, unreachable: dict[tuple[str, str], str]
) -> str:
    """Why an on-call rule at ``level`` could not match: its provider could not be asked."""
    reasons = []
    for rule in resource.auto_approve_rules_for(level):
        where = oncall.rule_schedule(rule)
        if where is not None and where in unreachable:
            provider = oncall.PROVIDERS.get(where[0], where[0])
            reasons.append(
                f"{provider} could not say who is on call for schedule {where[1]} "
                f"({unreachable[where]})"
            )
    if not reasons:
        return ""
    return "Not auto-approved: " + "; ".join(reasons) + ". An approver decides instead."


def submit_request(
    *,
    requester: User,
    resource: Resource,
    duration_minutes: int,
    justification: str = "",
    ticket: str = "",
    start_at: datetime | None = None,
    filed_by: User | None = None,
    level: AccessLevel | None = None,
    now: datetime | None = None,
) -> AccessRequest:
    """File a request. Returns it pending, or already approved when an auto-approval rule matched.

    With a scheduled or active grant on the resource, the request becomes an extension
    request of that grant (``kind=extension``); it keeps the grant's level unless it names
    another (an upgrade, e.g. read-only to full, approved like any request at that level).
    On a resource with levels, ``level`` (default: the highest) brings its own maximum,
    quorum and auto-approval rules. A second pending request is refused (``Conflict``).
    Audits ``request.submitted`` (and the auto-approval entries).
    """
    now = now or timezone.now()
    filed_by = filed_by or requester
    justification = _check_text(justification, "justification")
    ticket = _check_text(ticket, "ticket reference")[:120]
    # Asked before the transaction: a provider's answer may take seconds, and no row lock
    # should wait for it.
    on_call, unreachable = _ask_on_call(resource, requester, now)
    with audit.atomic():
        # Serialise one person's submissions so "one open request" holds under double clicks.
        get_user_model().objects.select_for_update().filter(pk=requester.pk).first()
        groups = requester.group_names()
        if resource.is_active and not resource.may_request(requester, groups):
            raise NotAllowed(f"You may not request {resource.name}.")
        # The person's scheduled or active grant here, if any: a request then extends it.
        held = (
            Grant.objects.open()
            .filter(user=requester, resource=resource)
            .select_related("level")
            .first()
        )
        if level is None and held is not None:
            level = held.level
        level = _check_level(resource, level)
        _validate_submission(
            requester=requester,
            resource=resource,
            duration_minutes=duration_minutes,
            justification=justification,
            ticket=ticket,
            start_at=start_at,
            now=now,
            level=level,
        )
        if AccessRequest.objects.open_for(requester, resource).exists():
            raise Conflict(
                f"You already have a pending request for {resource.name}; wait for it or cancel it."
            )
        if held is not None and start_at is not None:
            raise Conflict(
                f"You already have access to {resource.name}; ask for an extension instead."
            )
        if held is None and start_at is None:
            _refuse_outside_window(resource, now)
        rule = resource.auto_approve_rule_for(groups, duration_minutes, level, on_call=on_call)
        if rule is not None and held is not None:
            # An extension is auto-approved only if the rule covers the grant's whole new
            # window (from its start), and that window stays within the level's maximum.
            window = held.expires_at + timedelta(minutes=duration_minutes) - held.not_before
            covered = min(cast(int, rule["max_minutes"]), resource.max_minutes(level))
            if window > timedelta(minutes=covered):
                rule = None
        note = "" if rule is not None else _on_call_unasked(resource, level, unreachable)
        if rule is None or filed_by != requester:
            # A request nobody could approve would only wait until it expires: say so now.
            nobody = stages.nobody_can_approve(resource, level, requester)
            if nobody:
                raise PolicyViolation(nobody)
        req = AccessRequest(
            requester=requester,
            filed_by=filed_by,
            resource=resource,
            kind=RequestKind.EXTENSION if held else RequestKind.NEW,
            extends_grant=held,
            level=level,
            duration_minutes=duration_minutes,
            start_at=start_at,
            justification=justification,
            ticket=ticket,
            state=RequestState.PENDING,
            created_at=now,
            expires_at=now + timedelta(hours=settings.REQUEST_PENDING_TTL_HOURS),
            auto_approval_note=note if filed_by == requester else "",
        )
        try:
            with transaction.atomic():
                req.save()
        except IntegrityError:
            raise Conflict(f"You already have a pending request for {resource.name}.") from None
        details = _request_details(req)
        if filed_by != requester:
            details["filed_by"] = filed_by.email
        if req.auto_approval_note:
            details["auto_approval_note"] = req.auto_approval_note
        record(
            AuditAction.REQUEST_SUBMITTED,
            actor=filed_by,
            target=req,
            resource_slug=resource.slug,
            details=details,
        )
        if rule is not None and filed_by == requester:
            _approve_locked(req, approver=None, now=now, auto_rule=rule)
        else:
            events.emit(events.REQUEST_SUBMITTED, request_id=req.pk)
    return req


def submit_on_behalf(
    *,
    approver: User,
    user: User,
    resource: Resource,
    duration_minutes: int,
    justification: str,
    ticket: str = "",
    start_at: datetime | None = None,
    approve: bool = True,
    level: AccessLevel | None = None,
    now: datetime | None = None,
) -> AccessRequest:
    """An approver files (and by default approves) a request for someone else, e.g. in an incident.

    Both people are in the audit entries: ``filed_by`` on ``request.submitted``, the approver
    on ``request.approved``. The approver may not file for themselves this way.
    """
    if same_person(approver, user):
        raise NotAllowed("File your own requests from the request page.")
    if not resource.is_approver(approver):
        raise NotAllowed(f"You are not an approver of {resource.name}.")
    with audit.atomic():
        req = submit_request(
            requester=user,
            resource=resource,
            duration_minutes=duration_minutes,
            justification=justification,
            ticket=ticket,
            start_at=start_at,
            filed_by=approver,
            level=level,
            now=now,
        )
        if approve and req.state == RequestState.PENDING:
            approve_request(req, approver=approver, note="filed on behalf", now=now)
            req.refresh_from_db()
    return req


# --- Deciding ------------------------------------------------------------------------------


def _check_decider(req: AccessRequest, actor: User, now: datetime) -> None:
    if req.state == RequestState.PENDING and req.expires_at <= now:
        raise IllegalTransition(
            "This request waited too long and has expired; it cannot be decided."
        )
    check_transition(RequestState, req.state, RequestState.APPROVED)
    if same_person(actor, req.requester):
        raise NotAllowed("You cannot decide your own request.")
    if not actor.is_active or not req.resource.is_approver(actor):
        raise NotAllowed(f"You are not an approver of {req.resource.name}.")
    # The resource row is read under the request's lock (``_lock_request``): an archive
    # committed meanwhile wins.
    require_active(req.resource, "its requests are no longer decided")


def check_decider(req: AccessRequest, actor: User, *, now: datetime | None = None) -> None:
    """Raise what deciding ``req`` as ``actor`` would raise now, without deciding anything
    (``NotAllowed``, ``IllegalTransition``, ``PolicyViolation``): Slack asks before it opens
    the reason dialog."""
    _check_decider(req, actor, now or timezone.now())


def _set_strictest(req: AccessRequest, approvals: list[Approval]) -> None:
    """The request carries the most restrictive conditions of ``approvals`` (as asked: none)."""
    strictest = quorum.strictest_conditions(req, approvals)
    req.approved_duration_minutes = (
        strictest.duration_minutes if strictest.duration_minutes != req.duration_minutes else None
    )
    req.approved_level = strictest.level if strictest.level != req.level else None


def approve_request(
    req: AccessRequest,
    *,
    approver: User,
    duration_minutes: int | None = None,
    level: AccessLevel | None = None,
    note: str = "",
    now: datetime | None = None,
) -> Grant | None:
    """Record ``approver``'s approval with its conditions; when the quorum is met, approve
    and grant.

    Returns the new (or extended) grant, or None while more approvals are needed
    (``request.approval_recorded`` is audited then). ``duration_minutes`` may shorten, never
    lengthen, what was asked; ``level`` may lower, never raise, the level asked for. Each
    approval keeps its own conditions; the request carries the most restrictive of those
    that count (``quorum.strictest_conditions``), and so does the grant: a later approver
    never undoes an earlier one's limits. The quorum is that of the level granted. The
    window starts at approval (or at the requested start if that is later). With approval
    stages (``stages``) the approval is given in the stage that waits, and the request is
    approved when every stage is. Raises ``NotAllowed`` for the requester, a non-approver,
    or an approver of a later stage while an earlier one waits, ``IllegalTransition`` when
    the request is no longer pending, ``Conflict`` when this approver already approved.
    """
    now = now or timezone.now()
    note = _check_text(note, "note")
    with audit.atomic():
        req = _lock_request(req)
        _check_decider(req, approver, now)
        if duration_minutes is not None and not 0 < duration_minutes <= req.duration_minutes:
            raise PolicyViolation(
                f"An approver may shorten the duration (1 to {req.duration_minutes} minutes), "
                "not lengthen it."
            )
        if level is not None:
            asked = req.level
            if asked is None or level.resource_id != req.resource_id or level.rank > asked.rank:
                raise PolicyViolation(
                    "An approver may lower the access level asked for, not raise it."
                    if asked is not None and level.resource_id == req.resource_id
                    else "Choose one of this resource's levels, at most the one asked for."
                )
            if level.pk == asked.pk:
                level = None  # as asked
        if duration_minutes == req.duration_minutes:
            duration_minutes = None  # as asked
        if Approval.objects.filter(request=req, approver=approver).exists():
            raise Conflict("You have already approved this request.")
        # The stage that waits; an approver of a later stage is refused until it is done.
        stage = stages.stage_for(req, approver)
        approval = Approval.objects.create(
            request=req,
            approver=approver,
            created_at=now,
            note=note,
            duration_minutes=duration_minutes,
            level=level,
            stage=stage.number,
        )
        counted = quorum.counted_approvals(req)
        _set_strictest(req, counted.approvals)
        # Each counted approval counts for its stage (of the level granted) while its
        # approver may still approve that stage; only those set the conditions.
        states, not_in_stage = stages.progress(req, counted.approvals)
        in_stages = [a for state in states for a in state.approvals]
        if len(in_stages) != len(counted.approvals):
            _set_strictest(req, in_stages)
        counted = quorum.Counted(in_stages, [*counted.discarded, *not_in_stage])
        count = len(counted.approvals)
        needed = sum(state.stage.count for state in states)
        if not all(state.complete for state in states):
            req.save(update_fields=["approved_duration_minutes", "approved_level"])
            details: dict[str, Any] = {
                "approvals": count,
                "required": needed,
                "note": note,
                "conditions": quorum.set_by(approval),
            }
            if len(states) > 1:
                details["stage"] = stage.number
                details["stages"] = stages.summary(states)
            if counted.discarded:
                details["not_counted"] = counted.discarded
            record(
                AuditAction.REQUEST_APPROVAL_RECORDED,
                actor=approver,
                target=req,
                resource_slug=req.resource.slug,
                details=details,
            )
            events.emit(events.APPROVAL_RECORDED, request_id=req.pk)
            return None
        return _approve_locked(
            req,
            approver=approver,
            now=now,
            note=note,
            counted=counted,
            approval=approval,
            stage_summary=stages.summary(states) if len(states) > 1 else None,
        )


def max_end(grant: Grant, level: AccessLevel | None = None) -> datetime:
    """The latest end a grant may have without an override: its start plus the maximum of
    its level (or of ``level``, the one an upgrade moves it to)."""
    minutes = grant.resource.max_minutes(level if level is not None else grant.level)
    return grant.not_before + timedelta(minutes=minutes)


def _approve_locked(
    req: AccessRequest,
    *,
    approver: User | None,
    now: datetime,
    note: str = "",
    auto_rule: dict[str, Any] | None = None,
    counted: quorum.Counted | None = None,
    approval: Approval | None = None,
    stage_summary: list[dict[str, Any]] | None = None,
) -> Grant:
    """Approve a locked, pending request and create or extend its grant (inside a transaction).

    An extension may not take the grant's whole window past the resource maximum; going
    further takes a human's override with a reason (``extend_grant``).
    """
    require_active(req.resource, "it grants no access")
    minutes = req.approved_duration_minutes or req.duration_minutes
    level = req.effective_level
    transition(req, RequestState, RequestState.APPROVED)
    req.decided_by = approver
    req.decided_at = now
    req.decision_reason = note
    req.auto_approved_rule = auto_rule
    if req.kind == RequestKind.EXTENSION and req.extends_grant_id:
        grant = _lock_grant(req.extends_grant)  # type: ignore[arg-type]
        if not grant.is_open_at(now):
            raise IllegalTransition("The grant this request extends has already ended.")
        new_end = grant.expires_at + timedelta(minutes=minutes)
        limit = max_end(grant, level)
        if new_end > limit:
            room = max(0, int((limit - grant.expires_at).total_seconds() // 60))
            raise PolicyViolation(
                f"This extension would take the grant past {grant.resource.name}'s maximum of "
                f"{grant.resource.max_minutes(level)} minutes from its start "
                f"({room} minutes are left). Approve a shorter duration, or extend the grant "
                "with an override and a reason."
            )
        req.save()
        _audit_decision(req, approver, auto_rule, note, counted, approval, stage_summary)
        _extend_locked(
            grant,
            actor=approver,
            new_expires_at=new_end,
            reason=req.justification,
            now=now,
            level=level,
        )
        return grant
    if level is not None and minutes > req.resource.max_minutes(level):
        raise PolicyViolation(
            f"{req.resource.name} allows at most {req.resource.max_minutes(level)} minutes at "
            f"the level {level.name}; approve a shorter duration."
        )
    schedule = req.resource.schedule or None
    start = max(now, req.start_at) if req.start_at else now
    grant = Grant(
        request=req,
        user=req.requester,
        email=req.requester.email,  # exactly as the assertion carried it
        resource=req.resource,
        level=level,
        criteria=grant_criteria(level, schedule),
        schedule=schedule,
        not_before=start,
        expires_at=start + timedelta(minutes=minutes),
        state=GrantState.ACTIVE if start <= now else GrantState.SCHEDULED,
        created_at=now,
        is_break_glass=req.kind == RequestKind.BREAK_GLASS,
    )
    try:
        with transaction.atomic():
            req.save()
            grant.save()
    except IntegrityError:
        raise Conflict(
            f"{req.requester} already has access to {req.resource.name}; extend that grant instead."
        ) from None
    request_sync(req.resource)
    _audit_decision(req, approver, auto_rule, note, counted, approval, stage_summary)
    record(
        AuditAction.GRANT_ACTIVATED
        if grant.state == GrantState.ACTIVE
        else AuditAction.GRANT_SCHEDULED,
        actor=approver,
        target=grant,
        resource_slug=req.resource.slug,
        details={"email": grant.email, **grant.window(), "break_glass": grant.is_break_glass},
    )
    return grant


def _audit_decision(
    req: AccessRequest,
    approver: User | None,
    auto_rule: dict[str, Any] | None,
    note: str,
    counted: quorum.Counted | None = None,
    approval: Approval | None = None,
    stage_summary: list[dict[str, Any]] | None = None,
) -> None:
    """``request.approved`` (or ``auto_approved``): what was granted, who counted, and
    which conditions each of them set."""
    details: dict[str, Any] = {
        "requester": req.requester.email,
        "duration_minutes": req.approved_duration_minutes or req.duration_minutes,
        "approvers": counted.emails if counted is not None else [],
        "note": note,
    }
    if approval is not None:
        details["conditions"] = quorum.set_by(approval)
    if counted is not None:
        details["conditions_by_approver"] = quorum.conditions_by_approver(counted.approvals)
    if auto_rule is not None:
        details["rule"] = auto_rule
    if stage_summary:
        details["stages"] = stage_summary
    if req.level_id is not None:
        details["level"] = req.effective_level.slug  # type: ignore[union-attr]
        if req.approved_level_id is not None:
            details["level_asked"] = req.level.slug  # type: ignore[union-attr]
    if req.filed_by_id != req.requester_id:
        details["filed_by"] = req.filed_by.email
    record(
        AuditAction.REQUEST_AUTO_APPROVED if auto_rule else AuditAction.REQUEST_APPROVED,
        actor=approver,
        target=req,
        resource_slug=req.resource.slug,
        details=details,
    )
    events.emit(events.REQUEST_DECIDED, request_id=req.pk)


def reject_request(
    req: AccessRequest, *, approver: User, reason: str, now: datetime | None = None
) -> AccessRequest:
    """Reject a pending request; ``reason`` is required and shown to the requester.

    Any single approver's rejection rejects, also after others approved (quorum).
    """
    now = now or timezone.now()
    reason = _check_text(reason, "reason")
    if not reason:
        raise PolicyViolation("Say why the request is rejected.")
    with audit.atomic():
        req = _lock_request(req)
        _check_decider(req, approver, now)
        transition(req, RequestState, RequestState.REJECTED)
        req.decided_by = approver
        req.decided_at = now
        req.decision_reason = reason
        req.save()
        record(
            AuditAction.REQUEST_REJECTED,
            actor=approver,
            target=req,
            resource_slug=req.resource.slug,
            details={"requester": req.requester.email, "reason": reason},
        )
        events.emit(events.REQUEST_DECIDED, request_id=req.pk)
    return req


def cancel_request(
    req: AccessRequest, *, actor: User, now: datetime | None = None
) -> AccessRequest:
    """The requester (or whoever filed it) withdraws a pending request."""
    now = now or timezone.now()
    with audit.atomic():
        req = _lock_request(req)
        if actor.pk not in (req.requester_id, req.filed_by_id):
            raise NotAllowed("Only the requester can cancel this request.")
        transition(req, RequestState, RequestState.CANCELLED)
        req.decided_at = now
        req.save()
        record(
            AuditAction.REQUEST_CANCELLED,
            actor=actor,
            target=req,
            resource_slug=req.resource.slug,
            details={"requester": req.requester.email},
        )
        events.emit(events.REQUEST_CANCELLED, request_id=req.pk)
    return req


# --- Grants --------------------------------------------------------------------------------


def revoke_grant(grant: Grant, *, actor: User, reason: str, now: datetime | None = None) -> Grant:
    """End a scheduled or active grant now. Approvers of the resource may revoke anyone's;
    a user may give up their own. The rule leaves Zero at the next sync, which is
    enqueued on commit and retried until it lands (a revocation is never dropped).
    """
    now = now or timezone.now()
    reason = _check_text(reason, "reason")
    if not reason:
        raise PolicyViolation("Say why the grant is revoked.")
    with audit.atomic():
        grant = _lock_grant(grant)
        if actor.pk != grant.user_id and not grant.resource.is_approver(actor):
            raise NotAllowed(f"You are not an approver of {grant.resource.name}.")
        _revoke_locked(grant, actor=actor, reason=reason, now=now)
    return grant


def _revoke_locked(grant: Grant, *, actor: User | None, reason: str, now: datetime) -> None:
    transition(grant, GrantState, GrantState.REVOKED)
    grant.revoked_by = actor
    grant.revoked_at = now
    grant.revoke_reason = reason
    grant.sync_status = SyncStatus.PENDING
    grant.save()
    request_sync(grant.resource)
    record(
        AuditAction.GRANT_REVOKED,
        actor=actor,
        target=grant,
        resource_slug=grant.resource.slug,
        details={"email": grant.email, "reason": reason, **grant.window()},
    )
    events.emit(events.GRANT_REVOKED, grant_id=grant.pk)


def end_access_of(user: User, *, reason: str, now: datetime | None = None) -> None:
    """A person's account was retired (``accounts.services.identity_retired``): their pending
    requests are cancelled and their open grants revoked, by the system, with ``reason``.

    Runs inside the caller's transaction; takes its row locks (requests, then grants with
    their resources and the user) before any audit write, in the services' usual order.
    """
    now = now or timezone.now()
    reason = reason[:MAX_TEXT]
    requests = list(
        AccessRequest.objects.select_for_update(of=("self",))
        .select_related("resource", "requester")
        .filter(requester=user, state=RequestState.PENDING)
        .order_by("pk")
    )
    grants = list(
        Grant.objects.select_for_update(of=("self", "resource", "user"))
        .select_related("resource", "user", "level")
        .filter(user=user, state__in=OPEN_GRANT_STATES)
        .order_by("pk")
    )
    for req in requests:
        transition(req, RequestState, RequestState.CANCELLED)
        req.decided_at = now
        req.decision_reason = reason
        req.save(update_fields=["state", "decided_at", "decision_reason"])
        record(
            AuditAction.REQUEST_CANCELLED,
            target=req,
            resource_slug=req.resource.slug,
            details={"requester": req.requester.email, "reason": reason},
        )
    for grant in grants:
        _revoke_locked(grant, actor=None, reason=reason, now=now)


def extend_grant(
    grant: Grant,
    *,
    actor: User,
    new_expires_at: datetime,
    reason: str,
    override: bool = False,
    now: datetime | None = None,
) -> Grant:
    """Move a grant's end later, atomically: the new window replaces the old one, no gap.

    Only an approver of the resource, never the grant's own user. Beyond the resource's
    maximum (counted from the grant's start) only with ``override=True`` and a reason.
    """
    now = now or timezone.now()
    reason = _check_text(reason, "reason")
    if not reason:
        raise PolicyViolation("Say why the grant is extended.")
    with audit.atomic():
        grant = _lock_grant(grant)
        if same_person(actor, grant.user):
            raise NotAllowed("You cannot extend your own grant; ask for an extension instead.")
        if not actor.is_active or not grant.resource.is_approver(actor):
            raise NotAllowed(f"You are not an approver of {grant.resource.name}.")
        require_active(grant.resource, "its grants are not extended")
        limit = max_end(grant)
        if new_expires_at > limit and not override:
            raise PolicyViolation(
                f"That is past {grant.resource.name}'s maximum of "
                f"{grant.resource.max_minutes(grant.level)} minutes from the start; "
                "override with a reason to go further."
            )
        _extend_locked(
            grant,
            actor=actor,
            new_expires_at=new_expires_at,
            reason=reason,
            now=now,
            over_maximum=new_expires_at > limit,
        )
    return grant


def _extend_locked(
    grant: Grant,
    *,
    actor: User | None,
    new_expires_at: datetime,
    reason: str,
    now: datetime,
    over_maximum: bool = False,
    level: AccessLevel | None = None,
) -> None:
    """Move the grant's end (and, for an upgrade, its level) in one row write: the next
    sync replaces the old rule with the new one in the same policy write, so there is no
    moment with neither."""
    if not grant.is_open_at(now):
        raise IllegalTransition("Only a scheduled or active grant can be extended.")
    if new_expires_at <= grant.expires_at:
        raise PolicyViolation("The new end must be later than the current end.")
    old = grant.expires_at
    GrantExtension.objects.create(
        grant=grant,
        extended_by=actor,
        created_at=now,
        old_expires_at=old,
        new_expires_at=new_expires_at,
        reason=reason,
        over_maximum=over_maximum,
    )
    old_level = grant.level
    details: dict[str, Any] = {
        "email": grant.email,
        "old_expires_at": old.isoformat(),
        "new_expires_at": new_expires_at.isoformat(),
        "reason": reason,
        "over_maximum": over_maximum,
    }
    if level is not None and level.pk != grant.level_id:
        grant.level = level
        grant.criteria = grant_criteria(level, grant.schedule)
        details["old_level"] = old_level.slug if old_level is not None else None
    if grant.level is not None:
        details["level"] = grant.level.slug
    if grant.schedule:
        details["schedule"] = grant.schedule
    grant.expires_at = new_expires_at
    grant.sync_status = SyncStatus.PENDING
    grant.reminder_sent_at = None
    grant.save()
    request_sync(grant.resource)
    record(
        AuditAction.GRANT_EXTENDED,
        actor=actor,
        target=grant,
        resource_slug=grant.resource.slug,
        details=details,
    )


def break_glass(
    *,
    user: User,
    resource: Resource,
    duration_minutes: int,
    justification: str,
    now: datetime | None = None,
) -> Grant:
    """Emergency self-activation: granted at once, flagged, approvers told, queued for review.

    Refused (``PolicyViolation``) while the person holds ``BREAK_GLASS_MAX_UNREVIEWED``
    break-glass grants on the resource that no approver has reviewed yet, ended ones
    included: ending a grant and activating again does not escape the review. Each refusal
    is audited (``grant.break_glass_refused``) and the approvers are told.
    """
    now = now or timezone.now()
    justification = _check_text(justification, "justification")
    with audit.atomic():
        get_user_model().objects.select_for_update().filter(pk=user.pk).first()
        # Re-read under a lock: an archive committed meanwhile must win.
        resource = Resource.objects.select_for_update().get(pk=resource.pk)
        require_active(resource, "it takes no break-glass")
        if not set(resource.break_glass_groups) & user.group_names():
            raise NotAllowed(f"You may not use break-glass access for {resource.name}.")
        # Never past the resource maximum either, whatever the break-glass setting says.
        longest = min(resource.break_glass_max_minutes, resource.max_duration_minutes)
        if not isinstance(duration_minutes, int) or not 0 < duration_minutes <= longest:
            raise PolicyViolation(f"Break-glass access lasts at most {longest} minutes.")
        if len(justification) < max(resource.justification_min_length, 10):
            raise PolicyViolation(
                "Break-glass access needs a justification saying what is on fire."
            )
        if Grant.objects.open().filter(user=user, resource=resource).exists():
            raise Conflict(f"You already have access to {resource.name}.")
        unreviewed = list(
            Grant.objects.needing_review()
            .filter(user=user, resource=resource)
            .order_by("-not_before", "-pk")
            .values_list("pk", flat=True)
        )
        if len(unreviewed) < settings.BREAK_GLASS_MAX_UNREVIEWED:
            return _activate_break_glass(user, resource, duration_minutes, justification, now)
    # The attempt changed nothing; its refusal is recorded (and the approvers told) in a
    # transaction of its own, then the person is told why.
    with audit.atomic():
        record(
            AccessAction.BREAK_GLASS_REFUSED,
            actor=user,
            target=resource,
            resource_slug=resource.slug,
            details={
                "email": user.email,
                "duration_minutes": duration_minutes,
                "justification": justification,
                "unreviewed_grants": unreviewed,
                "limit": settings.BREAK_GLASS_MAX_UNREVIEWED,
            },
        )
        events.emit(events.BREAK_GLASS_REFUSED, grant_id=unreviewed[0], attempt=now.isoformat())
    raise PolicyViolation(
        f"Break-glass refused: no approver has reviewed your earlier break-glass access to "
        f"{resource.name} yet ({len(unreviewed)} unreviewed, at most "
        f"{settings.BREAK_GLASS_MAX_UNREVIEWED}). The approvers have been told; request "
        "access the usual way meanwhile."
    )


def _activate_break_glass(
    user: User, resource: Resource, duration_minutes: int, justification: str, now: datetime
) -> Grant:
    """Create the break-glass request and grant (inside the caller's locked transaction)."""
    # An emergency gets the resource's highest level and no recurring window: a fire
    # at 3 a.m. on a Sunday is exactly when break-glass is used.
    level = resource.levels.order_by("-rank").first()
    # Born approved: it never waits, so it never meets the one-pending-request rule.
    req = AccessRequest.objects.create(
        requester=user,
        filed_by=user,
        resource=resource,
        kind=RequestKind.BREAK_GLASS,
        level=level,
        duration_minutes=duration_minutes,
        justification=justification,
        state=RequestState.APPROVED,
        created_at=now,
        expires_at=now,
        decided_at=now,
        decision_reason="break-glass self-activation",
    )
    grant = Grant.objects.create(
        request=req,
        user=user,
        email=user.email,  # exactly as the assertion carried it
        resource=resource,
        level=level,
        criteria=grant_criteria(level, None),
        not_before=now,
        expires_at=now + timedelta(minutes=duration_minutes),
        state=GrantState.ACTIVE,
        created_at=now,
        is_break_glass=True,
    )
    request_sync(resource)
    record(
        AuditAction.GRANT_BREAK_GLASS,
        actor=user,
        target=grant,
        resource_slug=resource.slug,
        details={
            "email": grant.email,
            "justification": justification,
            "request": req.pk,
            **grant.window(),
        },
    )
    events.emit(events.BREAK_GLASS, grant_id=grant.pk)
    return grant


def mark_reviewed(grant: Grant, *, reviewer: User, note: str, now: datetime | None = None) -> Grant:
    """An approver (not the user) closes the review of a break-glass grant."""
    now = now or timezone.now()
    note = _check_text(note, "note")
    if not note:
        raise PolicyViolation("Write what the review found.")
    with audit.atomic():
        grant = _lock_grant(grant)
        if not grant.is_break_glass:
            raise IllegalTransition("Only break-glass grants need a review.")
        if grant.reviewed_at is not None:
            raise IllegalTransition("This grant was already reviewed.")
        if same_person(reviewer, grant.user):
            raise NotAllowed("You cannot review your own break-glass access.")
        if not grant.resource.is_approver(reviewer):
            raise NotAllowed(f"You are not an approver of {grant.resource.name}.")
        grant.reviewed_by = reviewer
        grant.reviewed_at = now
        grant.review_note = note
        grant.save()
        record(
            AuditAction.GRANT_REVIEWED,
            actor=reviewer,
            target=grant,
            resource_slug=grant.resource.slug,
            details={"email": grant.email, "note": note},
        )
    return grant


# --- Time passing --------------------------------------------------------------------------


_BATCH = 500


def _move_due(
    due: models.QuerySet[Any], still_due: models.QuerySet[Any], move: Callable[[Any], None]
) -> int:
    """Claim each row of ``due`` under its lock, re-check it against ``still_due``, move it.

    One small transaction per row; ``skip_locked`` leaves a row another runner holds to it,
    and the re-check makes a second runner that comes later find nothing to do.
    """
    moved = 0
    for pk in list(due.values_list("pk", flat=True)[:_BATCH]):
        with audit.atomic():
            row = still_due.select_for_update(skip_locked=True).filter(pk=pk).first()
            if row is not None:
                move(row)
                moved += 1
    return moved


def _expire_request(req: AccessRequest, *, actor: User | None = None) -> None:
    """Expire a locked pending request: it waited too long, or its resource was archived."""
    transition(req, RequestState, RequestState.EXPIRED)
    req.save(update_fields=["state"])
    details = {"requester": req.requester.email, "waited_until": req.expires_at.isoformat()}
    if not req.resource.is_active:
        details["reason"] = "resource archived"
    record(
        AuditAction.REQUEST_EXPIRED,
        actor=actor,
        target=req,
        resource_slug=req.resource.slug,
        details=details,
    )
    events.emit(events.REQUEST_EXPIRED, request_id=req.pk)


def expire_requests_of_archived(resource: Resource, *, actor: User | None) -> int:
    """An archived resource's open requests expire (inside the archiving transaction, after
    the resource row is locked; each audited ``request.expired``, reason "resource archived").

    A request someone is deciding at this very moment is skipped, never waited for (the
    decision then finds the resource archived and is refused); ``expire_due`` expires it at
    its next run, like any pending request of an archived resource. Returns how many expired.
    """
    pending = (
        AccessRequest.objects.pending()
        .filter(resource=resource)
        .select_for_update(of=("self",), skip_locked=True)
        .select_related("requester")
        .order_by("pk")
    )
    expired = 0
    for req in pending:
        req.resource = resource
        _expire_request(req, actor=actor)
        expired += 1
    return expired


def _activate_grant(grant: Grant) -> None:
    transition(grant, GrantState, GrantState.ACTIVE)
    grant.save(update_fields=["state"])
    record(
        AuditAction.GRANT_ACTIVATED,
        target=grant,
        resource_slug=grant.resource.slug,
        details={"email": grant.email, **grant.window()},
    )


def _expire_grant(grant: Grant) -> None:
    transition(grant, GrantState, GrantState.EXPIRED)
    grant.save(update_fields=["state"])
    # The PPL's date.before already ended access; the sync only tidies the policy.
    request_sync(grant.resource)
    record(
        AuditAction.GRANT_EXPIRED,
        target=grant,
        resource_slug=grant.resource.slug,
        details={"email": grant.email, **grant.window()},
    )
    events.emit(events.GRANT_EXPIRED, grant_id=grant.pk)


def move_grants_to_email(user: User, *, old: str, new: str, actor: User | None) -> int:
    """A person's email changed: their open grants follow it (inside the caller's transaction,
    before its first audit write: this takes row locks).

    Each scheduled or active grant gets the new address, is audited
    (``grant.email_changed``) and its resource re-synced, so the Pomerium rule names the
    address the assertion now carries. Returns how many grants moved.
    """
    grants = list(
        Grant.objects.select_for_update(of=("self",))
        .select_related("resource")
        .filter(user=user, state__in=OPEN_GRANT_STATES)
        .order_by("pk")
    )
    previous = {grant.pk: grant.email for grant in grants}
    # Every row write (grants, resources' sync generations) before the first audit entry.
    for grant in grants:
        grant.email = new
        grant.sync_status = SyncStatus.PENDING
        grant.save(update_fields=["email", "sync_status"])
    for resource in {grant.resource_id: grant.resource for grant in grants}.values():
        request_sync(resource)
    for grant in grants:
        record(
            AuditAction.GRANT_EMAIL_CHANGED,
            actor=actor,
            target=grant,
            resource_slug=grant.resource.slug,
            details={"old_email": previous[grant.pk], "new_email": new, **grant.window()},
        )
    return len(grants)


def expire_due(now: datetime | None = None) -> dict[str, int]:
    """Apply the clock: expire stale requests, start scheduled grants, end finished ones.

    Idempotent and safe to run concurrently: each row is claimed under its lock and only
    moved if it is still due. Returns how many rows moved, by kind. Actor: system.
    """
    now = now or timezone.now()
    requests = AccessRequest.objects.select_related("resource", "requester")
    grants = Grant.objects.select_related("resource")
    return {
        "requests_expired": _move_due(
            AccessRequest.objects.due_for_expiry(now),
            requests.due_for_expiry(now),
            _expire_request,
        ),
        "grants_activated": _move_due(
            Grant.objects.due_for_activation(now), grants.due_for_activation(now), _activate_grant
        ),
        "grants_expired": _move_due(
            Grant.objects.due_for_expiry(now), grants.due_for_expiry(now), _expire_grant
        ),
    }
