"""The targets a resource's policy may live in, by name (docs/sync.md "Several clusters").

The set comes from the settings alone (``apps.access.targets``): ``CLUSTER_ID`` is the
cluster named ``default``, ``ZERO_CLUSTERS`` adds ``name=cluster_id`` pairs,
``POMERIUM_CORE_URL`` and ``POMERIUM_TARGETS`` add ConfigService targets,
``ZERO_DEFAULT_CLUSTER`` names the one a new resource gets. Read at call time, so a test's
settings override is seen at once. Resources store the *name*.
"""

from __future__ import annotations

from django.conf import settings

from apps.access import targets

__all__ = ["cluster_id", "configured", "default_cluster_name", "names", "zero_clusters"]


def configured() -> dict[str, str]:
    """Every configured target, name -> address (a Zero cluster id, or a ConfigService URL)."""
    return {name: target.address for name, target in targets.configured().items()}


def zero_clusters() -> dict[str, str]:
    """The targets reached through Zero's v0 API, name -> Zero cluster id."""
    return {
        name: target.address
        for name, target in targets.configured().items()
        if target.flavour == targets.ZERO
    }


def names() -> list[str]:
    return list(configured())


def default_cluster_name() -> str:
    """The target a resource gets when it names none (the model field's default)."""
    return str(settings.ZERO_DEFAULT_CLUSTER)


def cluster_id(name: str) -> str:
    """The Zero cluster id of ``name``; KeyError if no such Zero cluster is configured."""
    return zero_clusters()[name]
