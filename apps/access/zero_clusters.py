"""Parse ``ZERO_CLUSTERS``: the Zero clusters the portal writes policies to.

Pure Python (no Django), so the settings module can refuse a bad value at start-up and the
system checks can re-validate the effective settings with the same rules.

The value is comma-separated ``name=cluster_id`` pairs, e.g.
``staging=3f2a...,production=9c1b...``. A name is what resources refer to (``Resource.cluster``),
so it must be short and stable: a lower-case letter, then lower-case letters, digits, ``-``
or ``_``, at most 32 characters. The cluster named ``default`` is ``CLUSTER_ID`` when that is
set; ``ZERO_CLUSTERS`` may then not name ``default`` itself. No two names may share a cluster id.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

__all__ = [
    "DEFAULT_NAME",
    "ID_RE",
    "NAME_RE",
    "ClusterConfigError",
    "cluster_set",
    "named_entries",
    "parse",
]

DEFAULT_NAME = "default"
NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
ID_RE = re.compile(r"^[^\s,=]+$")


class ClusterConfigError(ValueError):
    """The cluster configuration is invalid; the message is one readable sentence."""


def named_entries(
    text: str, setting: str, shape: str, error: type[ValueError]
) -> Iterator[tuple[str, str, str]]:
    """The ``name=value`` entries of a comma-separated setting, in order, as
    ``(entry, name, value)`` with a checked name; ``error`` for an empty entry, an entry
    without ``=`` (``shape`` says what one looks like) or an invalid name. Duplicate names
    and the values are the caller's to check."""
    if not text.strip():
        return
    for raw in text.split(","):
        entry = raw.strip()
        if not entry:
            raise error(f"{setting} has an empty entry (two commas in a row?)")
        name, sep, value = (part.strip() for part in entry.partition("="))
        if not sep:
            raise error(f"{setting} entry {entry!r} is not {shape}")
        if not NAME_RE.match(name):
            raise error(
                f"{setting} name {name!r} is not valid: a lower-case letter, then letters, "
                "digits, - or _ (at most 32)"
            )
        yield entry, name, value


def parse(text: str) -> dict[str, str]:
    """``name=cluster_id`` pairs, in order. Raises ``ClusterConfigError``."""
    clusters: dict[str, str] = {}
    for _, name, cluster_id in named_entries(
        text, "ZERO_CLUSTERS", "name=cluster_id", ClusterConfigError
    ):
        if not cluster_id:
            raise ClusterConfigError(f"ZERO_CLUSTERS entry {name!r} has an empty cluster id")
        if not ID_RE.match(cluster_id):
            raise ClusterConfigError(f"ZERO_CLUSTERS entry {name!r} has an invalid cluster id")
        if name in clusters:
            raise ClusterConfigError(f"ZERO_CLUSTERS names cluster {name!r} twice")
        clusters[name] = cluster_id
    return clusters


def cluster_set(cluster_id: str, extra: dict[str, str], default_name: str) -> dict[str, str]:
    """Every configured cluster, name -> id: ``default`` (``CLUSTER_ID``) first, then ``extra``.

    Without ``CLUSTER_ID`` and without ``extra`` the set is ``{"default": ""}``: a portal
    with the sync switched off still has the one default cluster its resources name.
    Raises ``ClusterConfigError`` for a name or id used twice, or a default name that is
    not configured.
    """
    clusters: dict[str, str] = {}
    if cluster_id or not extra:
        clusters[DEFAULT_NAME] = cluster_id
    for name, value in extra.items():
        if name in clusters:
            raise ClusterConfigError(
                f"ZERO_CLUSTERS names {name!r}, which is CLUSTER_ID's cluster; "
                "remove one of the two"
            )
        clusters[name] = value
    seen: dict[str, str] = {}
    for name, value in clusters.items():
        if value and value in seen:
            raise ClusterConfigError(
                f"clusters {seen[value]!r} and {name!r} have the same cluster id; "
                "give each cluster one name"
            )
        seen[value] = name
    if default_name not in clusters:
        names = ", ".join(clusters)
        raise ClusterConfigError(
            f"ZERO_DEFAULT_CLUSTER {default_name!r} is not a configured cluster ({names})"
        )
    return clusters
