"""The API's request and response shapes; the OpenAPI document is generated from them.

Times are RFC 3339: responses always in UTC with ``Z``; inputs must carry a zone (``Z``
or an offset) and are converted to UTC. Text fields refuse NUL characters and unpaired
surrogates (a database cannot store them), and hidden or direction-changing characters
(``apps.kit.text``), with a 400, as the forms do.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from ninja import Schema
from pydantic import AfterValidator, AwareDatetime, Field, PlainSerializer

from apps.access.services import MAX_TEXT
from apps.kit.text import hidden_problem

MAX_MINUTES = 100_000  # the admin's approve form allows the same


def _clean_text(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    problem = hidden_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def to_utc(value: datetime) -> datetime:
    # A date at the calendar's edge (year 1 at +01:00, year 9999 at -01:00) has no UTC form:
    # a validation error (422), not an OverflowError (500).
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError("this time is out of range") from None


def rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


Text = Annotated[str, AfterValidator(_clean_text)]
LongText = Annotated[str, Field(max_length=MAX_TEXT), AfterValidator(_clean_text)]
# A resource's or level's slug as a client names it: looked up, so it must be text the
# database can compare (PostgreSQL refuses NUL in a query: that was a 500, found by the fuzzer).
SlugIn = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_clean_text)]
Minutes = Annotated[int, Field(ge=1, le=MAX_MINUTES)]
InstantIn = Annotated[AwareDatetime, AfterValidator(to_utc)]
Instant = Annotated[datetime, PlainSerializer(rfc3339, return_type=str)]


class ErrorBody(Schema):
    code: str
    message: str
    fields: dict[str, str] | None = None


class ErrorOut(Schema):
    error: ErrorBody


# --- Resources -----------------------------------------------------------------------------


class LevelOut(Schema):
    slug: str
    name: str
    rank: int = Field(description="Lower = less privilege.")
    criteria: list[dict[str, Any]] = Field(
        description="Extra PPL criteria ANDed into each grant rule at this level."
    )
    max_duration_minutes: int = Field(description="This level's maximum.")
    approvals_required: int


class ScheduleOut(Schema):
    days: str = Field(description='Pomerium day_of_week, e.g. "mon-fri"')
    after: str = Field(description="Local time the daily window opens, HH:MM")
    before: str = Field(description="Local time it closes, HH:MM")
    timezone: str = Field(description="IANA zone of the window")
    text: str = Field(description="The schedule in plain words")


class ResourceOut(Schema):
    slug: str
    name: str
    description: str
    durations_minutes: list[int] = Field(description="The durations offered, in minutes.")
    max_duration_minutes: int
    justification_required: bool
    justification_min_length: int
    ticket_required: bool
    allow_scheduled: bool
    max_schedule_ahead_days: int
    approvals_required: int
    break_glass_allowed: bool = Field(description="You may use break-glass on it.")
    break_glass_max_minutes: int
    open_grant_id: int | None = Field(
        description="Your scheduled or active grant, if any: a new request extends it."
    )
    levels: list[LevelOut] = Field(
        description="Access levels, lowest first; empty = one implicit full level."
    )
    schedule: ScheduleOut | None = Field(description="The recurring window of its grants.")


# --- Grants and requests -------------------------------------------------------------------


AccessState = Literal["allowed", "opens", "waiting", "error", "ended"]


class AccessOut(Schema):
    """The one answer to "can I get in right now?" (``apps.access.reach``)."""

    state: AccessState = Field(
        description="allowed: Pomerium lets the holder in now; opens: later (scheduled, or "
        "between recurring windows); waiting: written, not yet confirmed by Pomerium; error: "
        "not enforced, the sync failed; ended: expired, revoked, released or no window left."
    )
    label: str = Field(
        description='The words the pages show, times in your zone: "Allowed now, until '
        '17:00 CET", "Opens Mon 09:00 CET", "Waiting for Pomerium", "Not enforced — sync '
        'error", "Ended".'
    )
    until: Instant | None = Field(description="allowed: when this access stops.")
    opens_at: Instant | None = Field(description="opens: when it next opens.")
    detail: str | None = Field(
        description="waiting/error: why; ended: how it ended. One sentence, or null."
    )


class GrantOut(Schema):
    id: int
    request_id: int
    resource: str
    resource_name: str
    email: str
    state: str = Field(description="scheduled, active, expired or revoked")
    not_before: Instant
    expires_at: Instant
    is_break_glass: bool
    sync_status: str = Field(
        description="pending, pending_apply, live, removed or error (the Zero sync)"
    )
    access: AccessOut = Field(
        description="Can its holder get in right now? The same answer the pages show."
    )
    live_at: Instant | None
    enforced_at: Instant | None
    revoked_at: Instant | None
    revoke_reason: str
    level: str | None = Field(description="The level approved (slug); null without levels.")
    criteria: list[dict[str, Any]] = Field(
        description="The extra PPL criteria the grant's rule carries (level, then schedule)."
    )
    schedule: dict[str, str] | None = Field(description="The recurring window, if any.")


class StageOut(Schema):
    number: int = Field(description="1, 2, ...: stages are approved in this order.")
    name: str
    groups: list[str] = Field(description="Whose members may approve this stage.")
    count: int = Field(description="Approvals this stage needs.")
    approvers: list[str] = Field(description="Emails of the approvals that count so far.")
    complete: bool
    can_approve: list[str] = Field(
        description="Emails of the people who could approve this stage now (empty once the "
        "stage is complete or the request decided)."
    )


class RequestOut(Schema):
    id: int
    resource: str
    resource_name: str
    kind: str = Field(description="new, extension or break_glass")
    state: str = Field(description="pending, approved, rejected, cancelled or expired")
    outcome: str = Field(
        description='What became of it, in words: "Approved → revoked by bob@example.com at '
        '14:02 CET", "Approved → released", "Auto-approved", "Break-glass", "Waiting for '
        'approval (1 of 2)", "Rejected by bob@example.com", "Cancelled", "Expired undecided".'
    )
    requester: str
    filed_by: str
    duration_minutes: int
    approved_duration_minutes: int | None
    level: str | None = Field(description="The level asked for (slug); null without levels.")
    approved_level: str | None = Field(description="A lower level an approver chose.")
    start_at: Instant | None
    justification: str
    ticket: str
    created_at: Instant
    expires_at: Instant = Field(description="Undecided by then, the request expires.")
    decided_by: str | None
    decided_at: Instant | None
    decision_reason: str
    auto_approval_note: str = Field(
        description="Why an on-call rule could not auto-approve it (its provider could not be "
        "asked), or empty."
    )
    approvals: int
    approvals_required: int
    grant: GrantOut | None
    stages: list[StageOut] | None = Field(
        default=None,
        description="The approval stages, in order: approvals counted so far and, while the "
        "request waits, who can approve each stage now. Only on a single request's answers "
        "(null in lists).",
    )


class PendingOut(RequestOut):
    approved_by_me: bool


class ApprovalOut(Schema):
    request: RequestOut
    grant: GrantOut | None = Field(description="Null while more approvals are needed.")


class RequestIn(Schema):
    resource: SlugIn
    level: SlugIn | None = Field(
        default=None, description="An access level's slug; required when the resource has levels."
    )
    duration_minutes: Minutes
    justification: LongText = ""
    ticket: Annotated[str, Field(max_length=120), AfterValidator(_clean_text)] = ""
    start_at: InstantIn | None = Field(
        default=None, description="Omit to start when approved; RFC 3339 with a zone."
    )


class ExtensionRequestIn(Schema):
    level: SlugIn | None = Field(
        default=None, description="Omit to keep the grant's level; another level upgrades it."
    )
    duration_minutes: Minutes
    justification: LongText = ""
    ticket: Annotated[str, Field(max_length=120), AfterValidator(_clean_text)] = ""


class ApproveIn(Schema):
    duration_minutes: Minutes | None = Field(
        default=None, description="Shorten (never lengthen) what was asked."
    )
    level: SlugIn | None = Field(
        default=None, description="Lower (never raise) the level asked for: a level's slug."
    )
    note: LongText = ""


class ReasonIn(Schema):
    reason: LongText


class ExtendIn(Schema):
    expires_at: InstantIn
    reason: LongText
    override: bool = Field(default=False, description="Go past the resource's maximum.")


# --- Reports -------------------------------------------------------------------------------


class AccessRowOut(Schema):
    resource: str
    email: str = Field(description="The person; empty on a group's or a level's row.")
    access_from: Instant | None = Field(
        description="When Pomerium began to enforce the grant; null for base rules and levels."
    )
    access_until: Instant | None = Field(
        description="When Pomerium confirmed the rule gone (or its own date window closed); "
        "null while the person may still get in (a revocation not yet enforced) and for base "
        "rules and levels."
    )
    state: str
    break_glass: bool
    approved_by: str
    request_id: int | None
    grant_id: int | None
    justification: str
    ticket: str
    revoked_by: str
    revoke_reason: str
    source: str = Field(description="grant, base rule or level")
    group: str = Field(description="The group a base rule names (also on its members' rows).")
    criteria: str = Field(description="The extra PPL criteria, as JSON text.")
    criteria_from: str = Field(description="Where those criteria come from.")
    enforcement: str = Field(
        description='What Pomerium confirmed, in words: "enforced from ...", "revocation not '
        "yet enforced\", a base rule's group and the members seen at sign-in."
    )


class AccessReportOut(Schema):
    report: str
    resource: str | None
    start: Instant | None
    end: Instant | None
    rows: list[AccessRowOut]
