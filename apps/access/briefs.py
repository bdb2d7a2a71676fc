"""What an approver reads before deciding: one brief per request (or break-glass grant).

The approve page and the break-glass review page show, for each selected object: who asks,
for what, at which level and what that level allows (``levels.level_meaning``), the window,
the justification and ticket, the quorum so far and who approved, the requester's recent
history on the resource, and which auto-approval rule almost matched and why not
(``models.rule_misses``). Everything is read for the whole selection at once: a page of 500
requests costs the same few queries as a page of one (tests/access/test_approver_pages.py).

Read-only: nothing here changes state, and the services check every rule again when the
approver confirms.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from django.db.models import Count, F, Prefetch, Window
from django.db.models.functions import RowNumber

from apps.accounts.models import load_group_names

from . import schedules, stages
from .durations import duration_label
from .levels import level_meaning
from .models import AccessLevel, AccessRequest, Approval, Grant, rule_misses, rule_text
from .quorum import approval_verdicts
from .states import GrantState, RequestKind, RequestState

if TYPE_CHECKING:
    from apps.accounts.models import User

HISTORY = 5  # past grants shown per requester and resource


def person(user: User | None) -> str:
    """``Alice Example <alice@example.com>``, or the address alone when there is no name."""
    if user is None:
        return "the portal"
    if user.display_name and user.email:
        return f"{user.display_name} <{user.email}>"
    return user.label


@dataclass
class ApprovalLine:
    """One approval so far. ``approval`` is the row itself: the conditions an approver set
    on it (duration, level) are shown from it by
    ``admin/access/accessrequest/_approval_conditions.html``."""

    approval: Approval
    approver: str
    at: datetime
    note: str
    not_counted: str  # why it does not count toward the quorum now; "" when it counts


@dataclass
class PastGrant:
    """One of the requester's recent grants on the resource."""

    grant: Grant
    level: str
    outcome: str
    break_glass: str  # "" for an ordinary grant


@dataclass
class Brief:
    """One request (or break-glass grant) as the approver reads it."""

    pk: int
    requester: str
    filed_by: str  # "" when the requester filed it
    resource_name: str
    kind: str
    kind_label: str
    level_name: str  # "" on a resource without levels
    level_meaning: list[str]
    lowered_to: str  # a lower level an earlier approver chose, or ""
    starts: datetime | None  # None: when approved
    ends: datetime
    window_note: str
    schedule: str
    justification: str
    ticket: str
    needed: int
    counted: int
    approvals: list[ApprovalLine] = field(default_factory=list)
    history: list[PastGrant] = field(default_factory=list)
    history_total: int = 0
    auto_approval: list[str] = field(default_factory=list)
    grant: Grant | None = None  # the break-glass grant under review
    # With approval stages: one line per stage ("Stage 1, Team lead: 1 of 1 from ...").
    stages: list[str] = field(default_factory=list)


def _stage_lines(req: AccessRequest, counting: list[Approval]) -> list[str]:
    """The stages of a request on a resource (or level) that has them; none otherwise (the
    quorum line says it all). Read from the approvals already loaded: no query."""
    if len(stages.stages_for(req.resource, req.effective_level)) < 2:
        return []
    states, _ = stages.progress(req, counting)
    return stages.describe(states)


# --- History ---------------------------------------------------------------------------


def _outcome(grant: Grant, now: datetime) -> str:
    if grant.state == GrantState.REVOKED:
        who = grant.revoked_by
        if who is not None and who.pk == grant.user_id:
            text = "ended early by the requester"
        else:
            text = f"revoked by {person(who)}" if who is not None else "revoked"
        return f"{text}: {grant.revoke_reason}" if grant.revoke_reason else text
    if grant.state == GrantState.EXPIRED or grant.expires_at <= now:
        return "expired"
    if grant.state == GrantState.SCHEDULED:
        return "scheduled"
    return "active now"


def _break_glass(grant: Grant) -> str:
    if not grant.is_break_glass:
        return ""
    if grant.reviewed_at is None:
        return "break-glass, not reviewed"
    return f"break-glass, reviewed by {person(grant.reviewed_by)}"


def _history(
    pairs: set[tuple[int, int]], now: datetime, exclude: set[int]
) -> tuple[dict[tuple[int, int], list[PastGrant]], dict[tuple[int, int], int]]:
    """The latest ``HISTORY`` grants of each (user, resource) pair, and how many each has:
    two queries, whatever the number of pairs."""
    if not pairs:
        return {}, {}
    users = {user for user, _ in pairs}
    resources = {resource for _, resource in pairs}
    mine = Grant.objects.filter(user_id__in=users, resource_id__in=resources).exclude(
        pk__in=exclude
    )
    latest = (
        mine.select_related("level", "revoked_by", "reviewed_by")
        .annotate(
            place=Window(
                RowNumber(),
                partition_by=[F("user_id"), F("resource_id")],
                order_by=[F("not_before").desc(), F("pk").desc()],
            )
        )
        .filter(place__lte=HISTORY)
        .order_by("user_id", "resource_id", "place")
    )
    history: dict[tuple[int, int], list[PastGrant]] = defaultdict(list)
    for grant in latest:
        key = (grant.user_id, grant.resource_id)
        if key in pairs:
            history[key].append(
                PastGrant(
                    grant=grant,
                    level=grant.level.name if grant.level is not None else "",
                    outcome=_outcome(grant, now),
                    break_glass=_break_glass(grant),
                )
            )
    totals = {
        (row["user_id"], row["resource_id"]): row["n"]
        for row in mine.order_by().values("user_id", "resource_id").annotate(n=Count("pk"))
    }
    return history, totals


# --- Auto-approval -----------------------------------------------------------------------


def _levels_below(req: AccessRequest) -> list[AccessLevel]:
    """The resource's levels below the one asked for, highest first (prefetched)."""
    asked = req.level
    if asked is None:
        return []
    levels = [lv for lv in req.resource.levels.all() if lv.rank < asked.rank]
    return sorted(levels, key=lambda lv: lv.rank, reverse=True)


def auto_approval_notes(req: AccessRequest, groups: set[str]) -> list[str]:
    """Whether an auto-approval rule (almost) matched this request, and why not: the rule,
    then the group, the duration or the level that kept it from approving."""
    if req.kind == RequestKind.BREAK_GLASS:
        return ["Break-glass: granted at once, reviewed afterwards; no rule applies."]
    if req.auto_approved_rule:
        return [f"Approved automatically by the rule {rule_text(req.auto_approved_rule)}."]
    resource, level = req.resource, req.level
    minutes = req.duration_minutes
    rules = resource.auto_approve_rules_for(level)
    notes = []
    if not rules:
        where = f"at the level {level.name}" if level is not None else f"on {resource.name}"
        notes.append(f"No auto-approval rule {where}.")
    for rule in rules:
        misses = rule_misses(rule, groups, minutes)
        if not misses:
            if req.filed_by_id != req.requester_id:
                why = "an approver filed it on the requester's behalf"
            elif req.kind == RequestKind.EXTENSION:
                why = "the extended grant would run past what the rule covers from its start"
            else:
                why = "the requester's groups or the rules changed since"
            notes.append(
                f"The rule {rule_text(rule)} matches now but did not approve it when it was "
                f"filed: {why}."
            )
        elif len(misses) == 1:
            notes.append(f"Almost: the rule {rule_text(rule)} did not match: {misses[0]}.")
        else:
            notes.append(f"The rule {rule_text(rule)} did not match: {'; '.join(misses)}.")
    for lower in _levels_below(req):
        shorter = min(minutes, resource.max_minutes(lower))
        for rule in resource.auto_approve_rules_for(lower):
            if not rule_misses(rule, groups, shorter):
                notes.append(
                    f"At the lower level {lower.name}, the rule {rule_text(rule)} would have "
                    f"approved it automatically (level asked: {level.name if level else '—'})."
                )
                break
    return notes


# --- Briefs ------------------------------------------------------------------------------


def _window(req: AccessRequest, now: datetime) -> tuple[datetime | None, datetime, str]:
    """(start or None for "when approved", end, a note) of the access the request would get
    if it were approved now."""
    minutes = req.approved_duration_minutes or req.duration_minutes
    asked = duration_label(req.duration_minutes)
    note = asked
    if req.approved_duration_minutes and req.approved_duration_minutes != req.duration_minutes:
        note = f"{asked} asked; an earlier approver shortened it to {duration_label(minutes)}"
    extended = req.extends_grant if req.kind == RequestKind.EXTENSION else None
    if extended is not None:
        end = extended.expires_at + timedelta(minutes=minutes)
        return extended.not_before, end, f"{note} more: the grant ends later"
    start = req.start_at if req.start_at and req.start_at > now else None
    end = (start or now) + timedelta(minutes=minutes)
    if start is None:
        note += ", from approval (the end shown is if approved now)"
    return start, end, note


def _schedule_text(schedule: Any, zone: tzinfo, now: datetime) -> str:
    parsed = schedules.parse(schedule) if schedule else None
    if parsed is None:
        return ""
    return "Only inside " + schedules.describe_for(parsed, zone, now)


def request_briefs(requests: list[AccessRequest], *, zone: tzinfo, now: datetime) -> list[Brief]:
    """A brief for each of ``requests`` (already visible to the reader), in the same order."""
    if not requests:
        return []
    pks = [r.pk for r in requests]
    found = {
        r.pk: r
        for r in AccessRequest.objects.filter(pk__in=pks)
        .select_related(
            "requester", "filed_by", "resource", "level", "approved_level", "extends_grant"
        )
        .prefetch_related(
            "resource__levels",
            Prefetch(
                "approvals",
                queryset=Approval.objects.select_related("approver", "level").order_by("pk"),
            ),
        )
    }
    rows = [found[pk] for pk in pks if pk in found]
    approvals = {r.pk: list(r.approvals.all()) for r in rows}
    load_group_names(
        [r.requester for r in rows] + [a.approver for lines in approvals.values() for a in lines]
    )
    history, totals = _history({(r.requester_id, r.resource_id) for r in rows}, now, set())
    briefs = []
    for req in rows:
        start, end, note = _window(req, now)
        verdicts = approval_verdicts(req, approvals[req.pk])
        level = req.level
        key = (req.requester_id, req.resource_id)
        briefs.append(
            Brief(
                pk=req.pk,
                requester=person(req.requester),
                filed_by="" if req.filed_by_id == req.requester_id else person(req.filed_by),
                resource_name=req.resource.name,
                kind=req.kind,
                kind_label=req.get_kind_display(),
                level_name=level.name if level is not None else "",
                level_meaning=level_meaning(level),
                lowered_to=req.approved_level.name if req.approved_level else "",
                starts=start,
                ends=end,
                window_note=note,
                schedule=_schedule_text(req.resource.schedule, zone, now),
                justification=req.justification,
                ticket=req.ticket,
                needed=sum(s.count for s in stages.stages_for(req.resource, req.effective_level)),
                stages=_stage_lines(req, [a for a, why in verdicts if not why]),
                counted=sum(1 for _, why in verdicts if not why),
                approvals=[
                    ApprovalLine(
                        approval=approval,
                        approver=person(approval.approver),
                        at=approval.created_at,
                        note=approval.note,
                        not_counted=why,
                    )
                    for approval, why in verdicts
                ],
                history=history.get(key, []),
                history_total=totals.get(key, 0),
                auto_approval=(
                    auto_approval_notes(req, req.requester.group_names())
                    if req.state == RequestState.PENDING
                    else []
                ),
            )
        )
    return briefs


def grant_briefs(grants: list[Grant], *, zone: tzinfo, now: datetime) -> list[Brief]:
    """A brief for each break-glass (or any) grant: what was taken, when, why, and the
    person's other recent grants on the resource."""
    if not grants:
        return []
    pks = [g.pk for g in grants]
    found = {
        g.pk: g
        for g in Grant.objects.filter(pk__in=pks).select_related(
            "user", "resource", "level", "request", "revoked_by", "reviewed_by"
        )
    }
    rows = [found[pk] for pk in pks if pk in found]
    history, totals = _history({(g.user_id, g.resource_id) for g in rows}, now, set(pks))
    briefs = []
    for grant in rows:
        req = grant.request
        key = (grant.user_id, grant.resource_id)
        briefs.append(
            Brief(
                pk=grant.pk,
                requester=person(grant.user),
                filed_by="",
                resource_name=grant.resource.name,
                kind=req.kind,
                kind_label=req.get_kind_display(),
                level_name=grant.level.name if grant.level is not None else "",
                level_meaning=level_meaning(grant.level),
                lowered_to="",
                starts=grant.not_before,
                ends=grant.expires_at,
                window_note=f"{_outcome(grant, now)}; "
                + duration_label(int((grant.expires_at - grant.not_before).total_seconds() // 60)),
                schedule=_schedule_text(grant.schedule, zone, now),
                justification=req.justification,
                ticket=req.ticket,
                needed=0,
                counted=0,
                history=history.get(key, []),
                history_total=totals.get(key, 0),
                grant=grant,
            )
        )
    return briefs


def lower_levels(requests: list[AccessRequest]) -> list[AccessLevel]:
    """The levels an approver may lower a batch to: when every request is on one resource,
    its levels below the highest level asked (lowest first); otherwise none, because a level
    belongs to one resource."""
    resources = {r.resource_id for r in requests}
    asked = {r.level_id for r in requests if r.level_id is not None}
    if len(resources) != 1 or not asked:
        return []
    levels = list(AccessLevel.objects.filter(resource_id=resources.pop()).order_by("rank"))
    top = max(level.rank for level in levels if level.pk in asked)
    return [level for level in levels if level.rank < top]
