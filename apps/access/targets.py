"""What the Pomerium holding a resource's policy can enforce by itself: its capabilities.

A resource names the target its policy lives in (``Resource.cluster``: a configured name).
The domain never asks which flavour of Pomerium that is, only what it can do:

* ``DATE``: a rule can carry its own ``date`` window, so Pomerium closes it by itself at
  the end (Zero, Enterprise). Without it (Core) the worker adds the rule when the window
  opens and removes it when it ends.
* ``RECURRING``: a rule can carry ``day_of_week``/``time_of_day`` (Zero, Enterprise).
* ``CHANGESETS``: a write may wait in a changeset before it is enforced (Zero's v0 API).
* ``ACTIVITY_LOG``: the target says who changed what (Zero's v0 API).

Read at call time from the settings, so a test's override is seen at once.
"""

from __future__ import annotations

__all__ = [
    "ACTIVITY_LOG",
    "CHANGESETS",
    "DATE",
    "RECURRING",
    "capabilities",
    "closes_by_itself",
    "expiry_enforcement",
]

DATE = "date"
RECURRING = "day_of_week/time_of_day"
CHANGESETS = "changesets"
ACTIVITY_LOG = "activity_log"

ZERO_V0 = frozenset({DATE, RECURRING, CHANGESETS, ACTIVITY_LOG})


def capabilities(target: str) -> frozenset[str]:
    """The capabilities of the target named ``target`` (a resource's ``cluster``).

    Every configured target is a Pomerium Zero cluster reached through its v0 API.
    """
    return ZERO_V0


def closes_by_itself(target: str) -> bool:
    """Does Pomerium close a grant's rule at the window's end without the portal?"""
    return DATE in capabilities(target)


BY_POMERIUM = "enforced by Pomerium itself"
BY_WORKER = "enforced by jitportal's worker"


def expiry_enforcement(target: str) -> str:
    """Who ends a grant's access on ``target``, in the words the admin shows: Pomerium
    itself (the rule carries its own window), or jitportal's worker (it removes the rule
    at the end, and opens and closes recurring windows), which is only as good as the
    worker: a worker that is down leaves the rule in place until it returns."""
    caps = capabilities(target)
    if DATE not in caps:
        return (
            f"{BY_WORKER}: this Pomerium cannot close a rule by itself, so the worker adds "
            "each grant's rule when its window opens and removes it when it ends (to the "
            "second while the worker runs; a worker outage delays removals until it is back, "
            "and the overdue-removal alert says so)"
        )
    if RECURRING not in caps:
        return (
            f"{BY_POMERIUM} at a grant's end; recurring windows are opened and closed by "
            "jitportal's worker"
        )
    return f"{BY_POMERIUM}: each rule carries its own window and closes at its end"
