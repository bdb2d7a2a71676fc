"""Asking for access: submitting (for oneself or on behalf), asking the on-call, cancelling."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, cast

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.access.actions import AccessAction
from apps.accounts.emails import same_person
from apps.audit import services as audit
from apps.audit.services import record

from .. import events, oncall, stages
from ..models import AccessLevel, AccessRequest, Grant, Resource
from ..states import (
    Conflict,
    NotAllowed,
    PolicyViolation,
    RequestKind,
    RequestState,
    transition,
)
from .decisions import _approve_locked, approve_request
from .rules import (
    _check_level,
    _check_text,
    _lock_request,
    _refuse_outside_window,
    _request_details,
    _validate_submission,
)

if TYPE_CHECKING:
    from apps.accounts.models import User


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
            AccessAction.REQUEST_SUBMITTED,
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
            AccessAction.REQUEST_CANCELLED,
            actor=actor,
            target=req,
            resource_slug=req.resource.slug,
            details={"requester": req.requester.email},
        )
        events.emit(events.REQUEST_CANCELLED, request_id=req.pk)
    return req
