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

__all__ = ["ACTIVITY_LOG", "CHANGESETS", "DATE", "RECURRING", "capabilities", "closes_by_itself"]

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
