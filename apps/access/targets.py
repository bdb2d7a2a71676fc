"""Where each resource's policy lives, and what that Pomerium can enforce by itself.

A resource names the target its policy lives in (``Resource.cluster``: a configured name).
The targets come from the settings alone (``apps.access.pomerium_targets``, docs/configuration.md):
``CLUSTER_ID``/``ZERO_CLUSTERS`` (Zero's v0 API), ``POMERIUM_CORE_URL`` (Core, the target
``default``) and ``POMERIUM_TARGETS`` (``name=flavour:address`` of any flavour).

The domain and the sync never ask which flavour a target is, only what it can do:

* ``DATE``: a rule can carry its own ``date`` window, so Pomerium closes it by itself at
  the end (Zero, Enterprise). Without it (Core) the worker adds the rule when the window
  opens and removes it when it ends.
* ``RECURRING``: a rule can carry ``day_of_week``/``time_of_day`` (Zero, Enterprise).
* ``CHANGESETS``: a write may wait in a changeset before it is enforced (Zero's v0 API).
  Without it a write is enforced at once, and proven by reading it back.
* ``ACTIVITY_LOG``: the target says who changed what (Zero's v0 API). Without it someone
  else's edit is found by comparing the policy with the portal's last write.
* ``ROUTES``: the portal may add a policy's id to the routes a resource names
  (``Resource.routes``; ConfigService targets). Without it, attach policies by hand.

``flavour`` is for the adapters and for what people read (``check_connectivity``, and
``enforcer``/``describe``/``console``: the one home of the words naming a target).
Read at call time from the settings, so a test's override is seen at once.
"""

from __future__ import annotations

import functools

from django.conf import settings

from apps.access import pomerium_targets
from apps.access.pomerium_targets import API, CORE, ZERO, Target

__all__ = [
    "ACTIVITY_LOG",
    "API",
    "CHANGESETS",
    "CORE",
    "DATE",
    "RECURRING",
    "ROUTES",
    "ZERO",
    "Target",
    "capabilities",
    "closes_by_itself",
    "configured",
    "console",
    "describe",
    "enforcer",
    "expiry_enforcement",
    "flavour",
    "get",
    "names",
    "product",
]

DATE = "date"
RECURRING = "day_of_week/time_of_day"
CHANGESETS = "changesets"
ACTIVITY_LOG = "activity_log"
ROUTES = "routes"

ZERO_V0 = frozenset({DATE, RECURRING, CHANGESETS, ACTIVITY_LOG})
_CAPABILITIES = {
    ZERO: ZERO_V0,
    # Zero or Enterprise through ConfigService: their policy engine has the date criteria,
    # but ConfigService has no changesets and no activity log.
    API: frozenset({DATE, RECURRING, ROUTES}),
    CORE: frozenset({ROUTES}),
}


def configured() -> dict[str, Target]:
    """Every configured target, name -> Target (``default`` first)."""
    return dict(
        _target_set(
            settings.CLUSTER_ID,
            tuple(dict(settings.ZERO_CLUSTERS).items()),
            settings.ZERO_DEFAULT_CLUSTER,
            getattr(settings, "POMERIUM_CORE_URL", ""),
            tuple(dict(getattr(settings, "POMERIUM_TARGETS", {}) or {}).items()),
            getattr(settings, "POMERIUM_SHARED_SECRET", ""),
            getattr(settings, "POMERIUM_API_TOKEN", ""),
        )
    )


@functools.lru_cache(maxsize=8)
def _target_set(
    cluster_id: str,
    zero: tuple[tuple[str, str], ...],
    default_name: str,
    core_url: str,
    targets: tuple[tuple[str, Target], ...],
    shared_secret: str,
    api_token: str,
) -> dict[str, Target]:
    # Built once per distinct settings (a page asks for every grant row it shows); still
    # read at call time, so a changed setting is a new key. A TargetConfigError is not kept.
    return pomerium_targets.target_set(
        cluster_id=cluster_id,
        zero=dict(zero),
        default_name=default_name,
        core_url=core_url,
        targets=dict(targets),
        shared_secret=shared_secret,
        api_token=api_token,
    )


def names() -> list[str]:
    return list(configured())


def get(target: str) -> Target:
    """The target named ``target``; KeyError if no such target is configured."""
    return configured()[target]


def flavour(target: str) -> str:
    """``zero``, ``core`` or ``api``; KeyError for a name that is not configured."""
    return get(target).flavour


def capabilities(target: str) -> frozenset[str]:
    """The capabilities of the target named ``target`` (a resource's ``cluster``).

    A name that is not configured is answered with Zero v0's capabilities (the default
    flavour); the sync refuses such a resource anyway.
    """
    found = configured().get(target)
    return _CAPABILITIES[found.flavour] if found is not None else ZERO_V0


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


# What people read about a target, by flavour: who holds the policy (the subject of a
# sentence), what to call a target of that flavour, and the product's name. Zero's v0
# API keeps its words ("Zero refused the policy…", "Zero cluster staging").
_WORDS = {
    ZERO: ("Zero", "Zero cluster", "Pomerium Zero"),
    CORE: ("Pomerium Core", "Pomerium Core", "Pomerium Core"),
    API: ("Pomerium", "Pomerium", "Pomerium"),  # Zero or Enterprise through ConfigService
}


def _words(target: str) -> tuple[str, str, str]:
    found = configured().get(target)
    # A name not configured (any more) reads as Zero's v0 API, like ``capabilities``.
    return _WORDS[found.flavour if found is not None else ZERO]


def enforcer(target: str) -> str:
    """Who holds the policy of a resource on ``target``, as the subject of a sentence:
    ``Zero`` (a Zero cluster), ``Pomerium Core``, or ``Pomerium``."""
    return _words(target)[0]


def describe(target: str) -> str:
    """The target named ``target`` as people read it: ``Zero cluster staging``,
    ``Pomerium Core edge`` or ``Pomerium edge``."""
    return f"{_words(target)[1]} {target}"


def console(target: str) -> str:
    """Where a person edits the target's policies by hand: ``the Zero console`` on a Zero
    cluster, else the target itself (``Pomerium Core edge``)."""
    return "the Zero console" if _words(target) == _WORDS[ZERO] else describe(target)


def product(target: str) -> str:
    """The Pomerium holding a resource's policy on ``target``, by its product's name:
    ``Pomerium Zero``, ``Pomerium Core``, or ``Pomerium``."""
    return _words(target)[2]
