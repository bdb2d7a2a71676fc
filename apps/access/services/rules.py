"""The checks every change of a request or grant makes: text, levels, windows, who may
decide, the archived refusal, and the row locks (request -> grant -> resource)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from apps.accounts.emails import same_person
from apps.accounts.timezones import stamp
from apps.kit.text import hidden_problem

from .. import quorum, schedules
from ..durations import duration_label
from ..models import AccessLevel, AccessRequest, Approval, Grant, Resource
from ..states import (
    IllegalTransition,
    NotAllowed,
    OutsideWindow,
    PolicyViolation,
    RequestState,
    check_transition,
)

if TYPE_CHECKING:
    from apps.accounts.models import User


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


def max_end(grant: Grant, level: AccessLevel | None = None) -> datetime:
    """The latest end a grant may have without an override: its start plus the maximum of
    its level (or of ``level``, the one an upgrade moves it to)."""
    minutes = grant.resource.max_minutes(level if level is not None else grant.level)
    return grant.not_before + timedelta(minutes=minutes)
