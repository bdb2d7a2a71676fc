"""Approval stages: who must approve a request, in which order, and who can approve it now.

A resource (or one of its levels) may list ordered stages, each with its own approver
groups and count::

    approval_stages:
      - {name: Team lead, groups: [team-leads], count: 1}
      - {name: Security, groups: [security], count: 1}

Without stages a resource has one implicit stage: ``approvals_required`` of its
``approver_groups`` (the quorum it always had; its level's quorum when the level sets one).

The rules (docs/approval-stages.md):

* Stages are strictly ordered. The request is in its first stage that is not complete;
  an approval counts for that stage, and only that stage's approvers (its groups; superusers
  stand in for every stage) can give it. An approver of a later stage who approves early is
  told which stage waits, and nothing is recorded.
* A person counts once per request, whatever stages they belong to.
* An approval counts only while its approver may still approve that stage (active, still
  in the stage's groups, not the requester under any alias).
* The request is approved when every stage is complete. One rejection by any approver of
  the resource rejects it, in any stage.

Stage groups must be among the resource's ``approver_groups``: the approvers of a resource
are who sees and may decide its requests; stages say who must agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.db.models import Q

from apps.accounts.emails import normalize_email, same_person
from apps.accounts.roles import claim_group_name

from .states import NotAllowed

if TYPE_CHECKING:
    from apps.accounts.models import User

    from .models import AccessLevel, AccessRequest, Resource

HELP = (
    'A list like [{"name": "Team lead", "groups": ["team-leads"], "count": 1}, '
    '{"name": "Security", "groups": ["security"], "count": 1}]; each stage\'s groups must be '
    "approver groups of the resource."
)


@dataclass(frozen=True)
class Stage:
    """One stage: ``number`` counts from 1."""

    number: int
    name: str
    groups: tuple[str, ...]
    count: int

    def admits(self, user: User, groups: set[str] | None = None) -> bool:
        """Whether ``user`` may approve in this stage (superusers in every stage)."""
        if not user.is_active:
            return False
        if user.is_superuser:
            return True
        return bool((groups if groups is not None else user.group_names()) & set(self.groups))

    def label(self) -> str:
        who = ", ".join(self.groups) or "superusers"
        return f"{self.count} of {who}"

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "groups": list(self.groups), "count": self.count}


@dataclass
class StageState:
    """Where one stage of a request stands: the approvals that count for it."""

    stage: Stage
    approvals: list[Any] = field(default_factory=list)  # Approval rows, oldest first

    @property
    def approvers(self) -> list[str]:
        return [a.approver.email for a in self.approvals]

    @property
    def complete(self) -> bool:
        return len(self.approvals) >= self.stage.count

    @property
    def missing(self) -> int:
        return max(0, self.stage.count - len(self.approvals))


def problems(stages: object, approver_groups: Sequence[str]) -> str:
    """Why ``stages`` is not a valid stage list for these approver groups, or ""."""
    if not isinstance(stages, list):
        return HELP
    for stage in stages:
        if (
            not isinstance(stage, dict)
            or set(stage) - {"name", "groups", "count"}
            or not isinstance(stage.get("name"), str)
            or not stage["name"].strip()
            or not isinstance(stage.get("groups"), list)
            or not stage["groups"]
            or not all(isinstance(g, str) and g for g in stage["groups"])
            or not isinstance(stage.get("count"), int)
            or isinstance(stage.get("count"), bool)
            or stage["count"] < 1
        ):
            return HELP
        outside = sorted(set(stage["groups"]) - set(approver_groups))
        if outside:
            return (
                f"Stage {stage['name']!r} names {', '.join(outside)}, which are not approver "
                "groups of the resource; add them there first."
            )
    return ""


def stages_for(resource: Resource, level: AccessLevel | None = None) -> list[Stage]:
    """The stages of a request at ``level``: the level's, else the resource's, else the one
    implicit stage of the quorum (``approvals_needed``) of the approver groups."""
    configured: Iterable[Any] = ()
    if level is not None and level.approval_stages:
        configured = level.approval_stages
    elif resource.approval_stages:
        configured = resource.approval_stages
    stages = [
        Stage(number=i, name=s["name"], groups=tuple(s["groups"]), count=int(s["count"]))
        for i, s in enumerate(configured, start=1)
    ]
    if stages:
        return stages
    return [
        Stage(
            number=1,
            name="Approval",
            groups=tuple(resource.approver_groups),
            count=resource.approvals_needed(level),
        )
    ]


def progress(
    req: AccessRequest, counted: Iterable[Any] | None = None
) -> tuple[list[StageState], list[dict[str, str]]]:
    """Each stage's counting approvals, and the approvals that do not count (and why).

    ``counted`` are the approvals the quorum counts (``quorum.counted_approvals``: active
    approvers of the resource, not the requester, each person once), read when not given.
    Each counts for the stage it was given in (``Approval.stage``) while its approver may
    still approve that stage."""
    stages = stages_for(req.resource, req.effective_level)
    states = [StageState(stage=s) for s in stages]
    by_number = {s.stage.number: s for s in states}
    discarded: list[dict[str, str]] = []
    if counted is None:
        from . import quorum  # quorum reads the models, which validate stages with us

        found = quorum.counted_approvals(req)
        counted, discarded = found.approvals, list(found.discarded)
    for approval in counted:
        state = by_number.get(approval.stage or 1)
        if state is None:
            why = "given in a stage this request no longer has"
        elif not state.stage.admits(approval.approver):
            why = f"no longer an approver of stage {state.stage.number}"
        else:
            state.approvals.append(approval)
            continue
        discarded.append({"approver": approval.approver.email, "reason": why})
    return states, discarded


def current(states: list[StageState]) -> StageState | None:
    """The first stage that is not complete (None: every stage is)."""
    return next((s for s in states if not s.complete), None)


def stage_for(req: AccessRequest, approver: User) -> Stage:
    """The stage an approval by ``approver`` would be given in now: the first stage that is
    not complete. Raises ``NotAllowed`` when they may not approve that stage (an approver of
    a later stage waits until the earlier ones are complete)."""
    states, _ = progress(req)
    waiting = current(states)
    if waiting is None:
        return states[-1].stage
    if waiting.stage.admits(approver):
        return waiting.stage
    stage = waiting.stage
    later = next(
        (s.stage for s in states if s.stage.number > stage.number and s.stage.admits(approver)),
        None,
    )
    if later is not None:
        raise NotAllowed(
            f"Stage {stage.number} ({stage.name}) waits: {stage.label()} must approve first. "
            f"You approve in stage {later.number} ({later.name}) once it is complete."
        )
    raise NotAllowed(
        f"You are not an approver of the stage that waits: stage {stage.number} ({stage.name}), "
        f"{stage.label()}."
    )


def summary(states: list[StageState]) -> list[dict[str, Any]]:
    """Each stage and its counted approvers, for the audit trail."""
    return [
        {**state.stage.as_dict(), "number": state.stage.number, "approvers": state.approvers}
        for state in states
    ]


def members(stage: Stage) -> list[User]:
    """The active people who may approve ``stage``: its groups' members, then the
    superusers (who may approve any stage), each once, by email."""
    model = get_user_model()
    groups = [claim_group_name(g) for g in stage.groups]
    found = model.objects.filter(Q(is_superuser=True) | Q(groups__name__in=groups), is_active=True)
    people = sorted(set(found), key=lambda p: (p.is_superuser, (p.email or "").lower()))
    return people


def _possible(stage: Stage, requester: User, exclude: set[str]) -> list[User]:
    out, keys = [], set(exclude)
    for person in members(stage):
        key = normalize_email(person.email or "") or f"user:{person.pk}"
        if key in keys or same_person(person, requester):
            continue
        keys.add(key)
        out.append(person)
    return out


def who_can_approve(req: AccessRequest) -> list[tuple[StageState, list[User]]]:
    """For each stage still waiting: the people who could give it a counting approval now
    (not the requester under any alias, not someone whose approval already counts)."""
    states, _ = progress(req)
    counted = {normalize_email(e) for state in states for e in state.approvers}
    return [
        (state, _possible(state.stage, req.requester, counted))
        for state in states
        if not state.complete
    ]


def nobody_can_approve(resource: Resource, level: AccessLevel | None, requester: User) -> str:
    """Why a request by ``requester`` at ``level`` could never be approved (a stage has fewer
    possible approvers besides them than it needs), or "". A person counts once."""
    for stage in stages_for(resource, level):
        others = _possible(stage, requester, set())
        if len(others) < stage.count:
            where = f" in stage {stage.number} ({stage.name})" if stage.name != "Approval" else ""
            return (
                f"Nobody can approve this request: {resource.name} needs {stage.label()}{where}, "
                f"and the portal knows {len(others)} current approver(s) besides you (people "
                "count once they have signed in). Ask an administrator to add approvers."
            )
    return ""


def describe(states: list[StageState]) -> list[str]:
    """One line per stage: "Stage 1, Team lead: 1 of 1 from team-leads (tina@…), done"."""
    lines = []
    for state in states:
        head = (
            state.stage.name
            if len(states) == 1
            else f"Stage {state.stage.number}, {state.stage.name}"
        )
        who = f" ({', '.join(state.approvers)})" if state.approvers else ""
        lines.append(
            f"{head}: {len(state.approvers)} of {state.stage.count} from "
            f"{', '.join(state.stage.groups) or 'superusers'}{who}"
            f"{', done' if state.complete else ''}"
        )
    return lines
