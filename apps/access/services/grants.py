"""Changing a grant: revoking, extending, break-glass, review marks, and a person's
access ending or moving to a new email."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from apps.accounts.emails import same_person
from apps.audit import services as audit
from apps.audit.services import record

from .. import events
from ..actions import AccessAction
from ..models import (
    AccessLevel,
    AccessRequest,
    Grant,
    GrantExtension,
    Resource,
    breaks_glass,
)
from ..states import (
    OPEN_GRANT_STATES,
    Conflict,
    GrantState,
    IllegalTransition,
    NotAllowed,
    PolicyViolation,
    RequestKind,
    RequestState,
    SyncStatus,
    transition,
)
from ..sync import request_sync
from .rules import MAX_TEXT, _check_text, _lock_grant, grant_criteria, max_end, require_active

if TYPE_CHECKING:
    from apps.accounts.models import User


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


ENDED_EARLY_REASON = "ended early by the user"


def end_own_grant(grant: Grant, *, actor: User, now: datetime | None = None) -> Grant:
    """The holder ends their own access now (the page's and the API's *End my access*):
    revoked with the reason ``ENDED_EARLY_REASON``. Only the holder may; an approver ends
    someone else's access with ``revoke_grant`` and a reason of their own."""
    if grant.user_id != actor.pk:
        raise NotAllowed("Only the person who holds this access can end it.")
    return revoke_grant(grant, actor=actor, reason=ENDED_EARLY_REASON, now=now)


def _revoke_locked(grant: Grant, *, actor: User | None, reason: str, now: datetime) -> None:
    transition(grant, GrantState, GrantState.REVOKED)
    grant.revoked_by = actor
    grant.revoked_at = now
    grant.revoke_reason = reason
    grant.sync_status = SyncStatus.PENDING
    grant.save()
    request_sync(grant.resource)
    record(
        AccessAction.GRANT_REVOKED,
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
            AccessAction.REQUEST_CANCELLED,
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
        AccessAction.GRANT_EXTENDED,
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
        if not breaks_glass(resource.break_glass_groups, user.group_names()):
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
        AccessAction.GRANT_BREAK_GLASS,
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
            AccessAction.GRANT_REVIEWED,
            actor=reviewer,
            target=grant,
            resource_slug=grant.resource.slug,
            details={"email": grant.email, "note": note},
        )
    return grant


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
            AccessAction.GRANT_EMAIL_CHANGED,
            actor=actor,
            target=grant,
            resource_slug=grant.resource.slug,
            details={"old_email": previous[grant.pk], "new_email": new, **grant.window()},
        )
    return len(grants)
