"""Deciding a request: approving (with the quorum and its stages) and rejecting."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.access.actions import AccessAction
from apps.audit import services as audit
from apps.audit.services import record

from .. import events, quorum, stages
from ..models import AccessLevel, AccessRequest, Approval, Grant
from ..states import (
    Conflict,
    GrantState,
    IllegalTransition,
    PolicyViolation,
    RequestKind,
    RequestState,
    transition,
)
from ..sync import request_sync
from .grants import _extend_locked
from .rules import (
    _check_decider,
    _check_text,
    _lock_grant,
    _lock_request,
    _set_strictest,
    grant_criteria,
    max_end,
    require_active,
)

if TYPE_CHECKING:
    from apps.accounts.models import User


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
                AccessAction.REQUEST_APPROVAL_RECORDED,
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
        AccessAction.GRANT_ACTIVATED
        if grant.state == GrantState.ACTIVE
        else AccessAction.GRANT_SCHEDULED,
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
        AccessAction.REQUEST_AUTO_APPROVED if auto_rule else AccessAction.REQUEST_APPROVED,
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
            AccessAction.REQUEST_REJECTED,
            actor=approver,
            target=req,
            resource_slug=req.resource.slug,
            details={"requester": req.requester.email, "reason": reason},
        )
        events.emit(events.REQUEST_DECIDED, request_id=req.pk)
    return req
