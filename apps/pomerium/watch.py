"""The tick's watch on Zero's activity log: which managed policies someone else changed.

Every 30 s ``zero.tick`` calls ``drifted_resources()``. Per cluster that holds a managed
policy it reads the namespace's policy entries, newest first, since the cluster's cursor
(``ZeroCluster.activity_cursor``): normally ONE call per tick per cluster, a few more only
when more entries arrived since the last tick than one page holds. An entry on a managed
policy (by id, or a policy created with a managed policy's name) that is not the
portal's own change by the one rule (``identity.is_own_change``: the portal's own Zero
user AND content the portal attempted for that policy) makes the resource's next sync a
forced one, which compares with Zero, overwrites the edit and audits
``zero.drift_repaired`` naming the editor. So a console edit is repaired within one tick,
not at the 5-minute reconcile.

A target without an activity log (ConfigService: Core, Enterprise) is compared instead:
one listing of its policies per tick (every page), each managed policy's content against
the portal's last write (``PolicySync.remote_digest``). A policy whose content differs, or
that is gone, is someone else's edit: the forced sync repairs it and audits
``zero.drift_repaired`` with the policy's ``modifiedAt`` beside the portal's last write.

Nothing is lost when the log cannot be read (an outage, a page cap below what arrived):
a cursor that cannot be reached makes every managed policy of the cluster be compared,
and the 5-minute reconcile still compares everything.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Q
from django.utils import timezone

from apps import ppl as ppl_lib
from apps.access import clusters, targets
from apps.access.models import Resource
from apps.pomerium import desired, identity, port
from apps.pomerium.client import ZeroClient, ZeroError, get_client
from apps.pomerium.models import PolicySync, ZeroCluster
from apps.pomerium.transport import PAGE_SIZE

__all__ = ["ClusterWatch", "drifted_resources"]

logger = logging.getLogger("apps.pomerium.sync")

MAX_WATCH_PAGES = 5  # beyond this many pages since the cursor, compare every policy instead


@dataclass
class ClusterWatch:
    """What one cluster's read of the activity log found."""

    cluster_id: str
    calls: int = 0
    entries: int = 0  # new entries read (since the cursor)
    drifted: set[int] = field(default_factory=set)  # resource ids to force-sync
    editors: dict[int, list[str]] = field(default_factory=dict)
    caught_up: bool = True  # False: the cursor was not reached; every policy is compared
    error: str = ""


def drifted_resources() -> tuple[set[int], list[ClusterWatch]]:
    """Resource ids whose managed policy someone else changed since the last tick, in every
    cluster holding a managed policy; and what each cluster's watch did. Zero errors are
    logged and reported per cluster, never raised: the reconcile still runs."""
    watches = []
    drifted: set[int] = set()
    for cluster_id in _watched_clusters():
        watch = _watch(get_client(cluster_id))
        watches.append(watch)
        drifted |= watch.drifted
    for name in _compared_targets():
        watch = _compare(name)
        watches.append(watch)
        drifted |= watch.drifted
    return drifted, watches


def _compared_targets() -> list[str]:
    """Targets without an activity log that hold at least one managed policy."""
    held = set(PolicySync.objects.exclude(remote_policy_id="").values_list("cluster_id", flat=True))
    found = []
    for name in targets.names():
        if targets.ACTIVITY_LOG in targets.capabilities(name):
            continue
        store = port.store_for(name)
        if store.cluster_id in held:
            found.append(name)
    return found


def _compare(name: str) -> ClusterWatch:
    """One listing of the target's policies, each managed one compared with the portal's
    last write: content that differs, or a policy that is gone, marks its resource."""
    store = port.store_for(name)
    watch = ClusterWatch(store.cluster_id)
    rows = list(
        PolicySync.objects.filter(cluster_id=store.cluster_id)
        .exclude(remote_policy_id="")
        .values_list("remote_policy_id", "resource_id", "remote_digest")
    )
    calls_before = sum(store.calls.values())
    try:
        listed = {str(p.get("id")): p for p in store.list_policies()}
    except ZeroError as exc:
        watch.error = str(exc)
        watch.caught_up = False
        logger.info("policies of target %s unavailable: %s", name, exc)
        return watch
    finally:
        watch.calls = sum(store.calls.values()) - calls_before
    watch.entries = len(listed)
    for policy_id, resource_id, digest in rows:
        policy = listed.get(policy_id)
        if policy is None:
            watch.drifted.add(resource_id)
            watch.editors[resource_id] = ["(deleted outside the portal)"]
            continue
        if digest and desired.state_digest(desired.managed_state(policy)) != digest:
            watch.drifted.add(resource_id)
            watch.editors[resource_id] = [f"(modified at {policy.get('modifiedAt') or '?'})"]
    if watch.drifted:
        logger.info(
            "target %s: %d managed policy(ies) differ from the portal's last write; "
            "syncing them now",
            name,
            len(watch.drifted),
        )
    return watch


def _watched_clusters() -> list[str]:
    """Configured Zero clusters that hold at least one managed policy."""
    zero = clusters.zero_clusters()
    default = zero.get(clusters.default_cluster_name())
    held = set(PolicySync.objects.exclude(remote_policy_id="").values_list("cluster_id", flat=True))
    return [c for c in zero.values() if c in held or (c == default and "" in held)]


def _managed(cluster_id: str) -> tuple[dict[str, int], dict[str, int], dict[str, set[str]]]:
    """(policy id -> resource id, policy name -> resource id, policy id -> attempted digests)
    for the cluster's managed policies (rows written before clusters were recorded are the
    default cluster's)."""
    holders = Q(cluster_id=cluster_id)
    if cluster_id == clusters.zero_clusters().get(clusters.default_cluster_name()):
        holders |= Q(cluster_id="")
    rows = (
        PolicySync.objects.filter(holders)
        .exclude(remote_policy_id="")
        .values_list("remote_policy_id", "resource_id", "attempted_digests")
    )
    by_id: dict[str, int] = {}
    attempted: dict[str, set[str]] = {}
    for policy_id, resource_id, digests in rows:
        by_id[policy_id] = resource_id
        attempted[policy_id] = set(digests or [])
    by_name = {
        resource.policy_name: resource.pk
        for resource in Resource.objects.filter(pk__in=set(by_id.values()))
    }
    return by_id, by_name, attempted


def _when(entry: Mapping[str, Any]) -> datetime | None:
    return ppl_lib.parse_rfc3339(entry.get("updatedAt")) or ppl_lib.parse_rfc3339(
        entry.get("createdAt")
    )


def _watch(client: ZeroClient) -> ClusterWatch:
    watch = ClusterWatch(client.cluster_id)
    row, _ = ZeroCluster.objects.get_or_create(cluster_id=client.cluster_id)
    cursor = ppl_lib.parse_rfc3339(row.activity_cursor)
    seen_at_cursor = set(row.activity_cursor_ids or [])
    calls_before = sum(client.calls.values())
    try:
        fresh, watch.caught_up = _read_since(client, cursor, seen_at_cursor)
    except ZeroError as exc:
        watch.error = str(exc)
        logger.info("Zero activity log of cluster %s unavailable: %s", client.cluster_id, exc)
        return watch
    finally:
        watch.calls = sum(client.calls.values()) - calls_before
    watch.entries = len(fresh)
    by_id, by_name, attempted = _managed(client.cluster_id)
    own = identity.own_identity(client.cluster_id)
    if cursor is not None and not watch.caught_up:
        # More arrived than we read: compare every managed policy of the cluster.
        watch.drifted = set(by_id.values())
    for entry in fresh:
        entity = entry.get("entity") if isinstance(entry.get("entity"), dict) else {}
        assert isinstance(entity, dict)
        data = entity.get("data") if isinstance(entity.get("data"), dict) else {}
        assert isinstance(data, dict)
        resource_id = by_id.get(str(entity.get("id"))) or by_name.get(str(data.get("name")))
        if resource_id is None or identity.is_own_change(entry, own, attempted):
            continue
        watch.drifted.add(resource_id)
        who = identity.author(entry) or "an unnamed Zero user"
        if who not in watch.editors.setdefault(resource_id, []):
            watch.editors[resource_id].append(who)
    _advance(row, cursor, seen_at_cursor, fresh)
    if watch.drifted:
        logger.info(
            "Zero cluster %s: %d managed policy(ies) changed by someone else since the last "
            "tick (%s); syncing them now",
            client.cluster_id,
            len(watch.drifted),
            ", ".join(sorted({e for names in watch.editors.values() for e in names})) or "-",
        )
    return watch


def _read_since(
    client: ZeroClient, cursor: datetime | None, seen_at_cursor: set[str]
) -> tuple[list[dict[str, Any]], bool]:
    """Policy entries of the namespace newer than the cursor, newest first, and whether the
    cursor was reached. Without a cursor (the first read) only the first page is read."""
    namespace = client.namespace_id()
    fresh: list[dict[str, Any]] = []
    offset = 0
    for _ in range(MAX_WATCH_PAGES):
        page = client.activity_logs(
            namespaceId=namespace, entityType="policy", limit=PAGE_SIZE, offset=str(offset)
        )
        for entry in page:
            when = _when(entry)
            if (
                cursor is not None
                and when is not None
                and (when < cursor or (when == cursor and str(entry.get("id")) in seen_at_cursor))
            ):
                return fresh, True
            fresh.append(entry)
        if cursor is None or not page:
            return fresh, True
        offset += len(page)
    return fresh, False


def _advance(
    row: ZeroCluster,
    cursor: datetime | None,
    seen_at_cursor: set[str],
    fresh: list[dict[str, Any]],
) -> None:
    """Move the cursor to the newest entry read; ids at that instant are remembered so the
    next read does not take them again. A conditional update: a tick that read the same
    entries at the same time changes nothing."""
    stamps = [(w, e) for e in fresh if (w := _when(e)) is not None]
    now = timezone.now()
    if not stamps:
        ZeroCluster.objects.filter(pk=row.pk).update(activity_read_at=now)
        return
    newest = max(w for w, _ in stamps)
    ids = {str(e.get("id")) for w, e in stamps if w == newest}
    if cursor is not None and newest == cursor:
        ids |= seen_at_cursor
    ZeroCluster.objects.filter(pk=row.pk, activity_cursor=row.activity_cursor).update(
        activity_cursor=newest.isoformat(),
        activity_cursor_ids=sorted(ids),
        activity_read_at=now,
    )
