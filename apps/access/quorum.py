"""Which approvals count toward a request's quorum, and which conditions win among them.

Each approver may shorten the duration and lower the level asked for; every approval keeps
what its approver set (``Approval.duration_minutes``, ``Approval.level``; empty: as asked).
The grant takes the most restrictive conditions of the approvals that count: the
shortest duration and the lowest level (lowest ``rank``). An approval that no longer
counts (its approver left the approver groups, or is the same person as an earlier one)
constrains nothing: it is not part of the decision, and the quorum needs another approval
that is, whose conditions then apply.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from apps.accounts.emails import normalize_email, same_person

from .models import AccessLevel, AccessRequest, Approval


@dataclass(frozen=True)
class Counted:
    """The approvals of a request that count now, and those that do not (with why)."""

    approvals: list[Approval]
    discarded: list[dict[str, str]]

    @property
    def emails(self) -> list[str]:
        return [a.approver.email for a in self.approvals]


def approval_verdicts(
    req: AccessRequest, approvals: Iterable[Approval]
) -> list[tuple[Approval, str]]:
    """Each approval (in the order given) with why it does not count toward the quorum now,
    or "" when it counts.

    An approval counts only if its approver may still decide this resource at this moment
    (active, an approver of the resource, not the requester) and is a person not counted
    already: distinctness is by normalised email, not by account.
    """
    seen: set[str] = set()
    verdicts = []
    for approval in approvals:
        person = approval.approver
        key = normalize_email(person.email or "") or f"user:{person.pk}"
        if not person.is_active or not req.resource.is_approver(person):
            why = "no longer an approver of the resource"
        elif same_person(person, req.requester):
            why = "the requester"
        elif key in seen:
            why = "the same person as an earlier approval"
        else:
            seen.add(key)
            why = ""
        verdicts.append((approval, why))
    return verdicts


def counted_approvals(req: AccessRequest) -> Counted:
    """The approvals that count toward the quorum now, oldest first, and those that do not
    (``approval_verdicts``)."""
    approvals = (
        Approval.objects.filter(request=req).select_related("approver", "level").order_by("pk")
    )
    counted: list[Approval] = []
    discarded: list[dict[str, str]] = []
    for approval, why in approval_verdicts(req, approvals):
        if why:
            discarded.append({"approver": approval.approver.email, "reason": why})
        else:
            counted.append(approval)
    return Counted(counted, discarded)


@dataclass(frozen=True)
class Conditions:
    """What a grant gets: minutes, and the level (None on a resource without levels)."""

    duration_minutes: int
    level: AccessLevel | None


def strictest_conditions(req: AccessRequest, approvals: list[Approval]) -> Conditions:
    """The most restrictive conditions among ``approvals`` (those that count), each read as
    the request asked where its approver set nothing: the shortest duration, the lowest
    level. With no approvals, what was asked."""
    minutes = min(
        [req.duration_minutes, *(a.duration_minutes for a in approvals if a.duration_minutes)]
    )
    level = req.level
    for approval in approvals:
        if approval.level is not None and (level is None or approval.level.rank < level.rank):
            level = approval.level
    return Conditions(minutes, level)


def set_by(approval: Approval) -> dict[str, Any]:
    """The conditions one approver set, for the audit trail (null: as asked)."""
    return {
        "duration_minutes": approval.duration_minutes,
        "level": approval.level.slug if approval.level is not None else None,
    }


def conditions_by_approver(approvals: list[Approval]) -> list[dict[str, Any]]:
    """Who set which conditions, for the decision's audit entry."""
    return [{"approver": a.approver.email, **set_by(a)} for a in approvals]
