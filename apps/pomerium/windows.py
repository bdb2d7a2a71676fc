"""Which grants' rules a target that cannot close a window by itself must carry now, and
when that next changes: the one home of the worker's windows.

A target with ``targets.DATE`` keeps a grant's ``date`` window in the rule and closes it by
itself; one with ``targets.RECURRING`` does the same for a schedule's ``day_of_week`` and
``time_of_day``. A target without them (Pomerium Core) cannot: the portal writes the rule
only while the window is open and removes it when it ends. This module answers the two
questions the sync asks of it:

* ``open_windows(resource, now)``: grant id -> the ``Window`` the grant's rule is in the
  policy for at ``now`` (a grant not listed must have no rule). A window is open when the
  grant is not revoked, released or expired, ``not_before <= now < expires_at`` (where the
  target has no ``date``) and, where the target has no ``day_of_week``/``time_of_day``,
  ``now`` lies in one of its schedule's windows in the schedule's zone.
* ``next_boundary(resource, now)``: the next instant after ``now`` at which any grant's rule
  must appear or disappear (``None``: no such instant). The sync stores it
  (``PolicySync.due_at``) and queues a pass for that second.

Schedule windows come from ``apps.access.schedules`` (the one home of "is a recurring window
open": wall-clock times in the schedule's zone, converted with the offset each day has, so
correct across DST). Boundaries are exact instants; a pass at the boundary sees the new
state, since windows are half-open ``[opens, closes)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from apps.access import schedules, targets
from apps.access.models import Grant, Resource

__all__ = [
    "Window",
    "grant_window",
    "needs_worker",
    "next_boundary",
    "open_windows",
    "strip_schedule_criteria",
]


@dataclass(frozen=True, slots=True)
class Window:
    """The stretch ``[opens, closes)`` during which a grant's rule is in the policy."""

    opens: datetime
    closes: datetime


def needs_worker(caps: Iterable[str]) -> bool:
    """Does a target with these capabilities need the worker to open or close rules?"""
    caps = frozenset(caps)
    return targets.DATE not in caps or targets.RECURRING not in caps


def _schedule(grant: Any, caps: frozenset[str]) -> schedules.Schedule | None:
    """The grant's schedule when the worker (not Pomerium) must evaluate it."""
    if targets.RECURRING in caps or not grant.schedule:
        return None
    try:
        return schedules.parse(grant.schedule)
    except ValueError:
        return None  # validated when copied; an unreadable one keeps its criteria (refused)


def grant_window(grant: Any, now: datetime, caps: Iterable[str]) -> Window | None:
    """The window the grant's rule belongs in the policy for at ``now`` on a target with
    ``caps``; ``None`` when the rule must not be there now.

    ``grant`` needs ``not_before``, ``expires_at`` and ``schedule`` and is taken to be in
    policy (open state, not revoked: ``Grant.objects.in_policy``). On a target that closes
    every window by itself the window is the grant's own, whatever ``now``.
    """
    caps = frozenset(caps)
    start, end = grant.not_before, grant.expires_at
    if now >= end:
        return None
    if targets.DATE not in caps and now < start:
        return None
    schedule = _schedule(grant, caps)
    if schedule is None:
        return Window(start, end)
    # A window containing ``now`` opened less than a day ago (windows never cross midnight).
    for opens, closes in schedules.windows(schedule, max(start, now - timedelta(days=1)), end):
        if opens <= now < closes:
            if targets.DATE in caps:
                # The rule carries the grant's own date; the worker only adds and removes it.
                return Window(start, end)
            return Window(opens, closes)
        if opens > now:
            break
    return None


def _next_change(grant: Any, now: datetime, caps: frozenset[str]) -> datetime | None:
    """The next instant after ``now`` at which the grant's rule must appear or disappear."""
    start, end = grant.not_before, grant.expires_at
    if now >= end:
        return None
    schedule = _schedule(grant, caps)
    if schedule is None:
        if targets.DATE in caps:
            return None  # Pomerium opens and closes it by itself
        return start if now < start else end
    state = schedules.state_at(schedule, now, start, end)
    if state is None:
        # No window is left; a date-less target still holds nothing after this.
        return None
    _open, moment = state
    return moment


def _in_policy(resource: Resource, now: datetime) -> Any:
    return (
        Grant.objects.in_policy(resource, now)
        .order_by("pk")
        .only("pk", "not_before", "expires_at", "schedule")
    )


def open_windows(resource: Resource, now: datetime) -> dict[int, Window]:
    """Grant id -> window, for every grant whose rule the resource's policy carries at
    ``now`` (see the module docstring). On a target that closes every window by itself this
    is every grant in policy, with its own window."""
    caps = targets.capabilities(resource.cluster)
    found = {}
    for grant in _in_policy(resource, now):
        window = grant_window(grant, now, caps)
        if window is not None:
            found[grant.pk] = window
    return found


def next_boundary(resource: Resource, now: datetime) -> datetime | None:
    """The next instant after ``now`` at which any of the resource's grants' rules must
    appear or disappear; ``None`` on a target that needs no worker for it, or when no grant
    will change. Recurring windows are read in their zone, DST included."""
    caps = targets.capabilities(resource.cluster)
    if not needs_worker(caps):
        return None
    moments = [
        moment
        for grant in _in_policy(resource, now)
        if (moment := _next_change(grant, now, caps)) is not None and moment > now
    ]
    return min(moments, default=None)


def strip_schedule_criteria(criteria: list[Any], schedule: object) -> list[Any]:
    """A grant's copied criteria without its schedule's ``day_of_week``/``time_of_day``
    (appended last when it was approved), for a target where the worker opens and closes
    the windows instead. Criteria that are not exactly the schedule's are kept: a level
    naming ``time_of_day`` on such a target is refused, never silently widened."""
    try:
        parsed = schedules.parse(schedule)
    except ValueError:
        return criteria
    if parsed is None:
        return criteria
    tail = schedules.criteria(parsed)
    if len(criteria) >= len(tail) and criteria[-len(tail) :] == tail:
        return criteria[: -len(tail)]
    return criteria
