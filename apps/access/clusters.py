"""The Zero clusters a resource's policy may live in (docs/sync.md "Several clusters").

The set comes from the settings alone: ``CLUSTER_ID`` is the cluster named ``default``,
``ZERO_CLUSTERS`` adds ``name=cluster_id`` pairs, ``ZERO_DEFAULT_CLUSTER`` names the one a
new resource gets. Read at call time, so a test's settings override is seen at once.
Resources store the *name*; the Zero sync turns it into the cluster id.
"""

from __future__ import annotations

from django.conf import settings

from jitportal import zero_clusters

__all__ = ["cluster_id", "configured", "default_cluster_name", "names"]


def configured() -> dict[str, str]:
    """Every configured cluster, name -> Zero cluster id (``default`` first)."""
    return zero_clusters.cluster_set(
        settings.CLUSTER_ID, dict(settings.ZERO_CLUSTERS), settings.ZERO_DEFAULT_CLUSTER
    )


def names() -> list[str]:
    return list(configured())


def default_cluster_name() -> str:
    """The cluster a resource gets when it names none (the model field's default)."""
    return str(settings.ZERO_DEFAULT_CLUSTER)


def cluster_id(name: str) -> str:
    """The Zero cluster id of ``name``; KeyError if no such cluster is configured."""
    return configured()[name]
