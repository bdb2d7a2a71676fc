"""The read-mostly Zero calls of a sync pass: who edited a policy, which routes use it,
and whether the portal's change is applied (changesets).

Helpers of ``apps.zero.sync``; each raises ``ZeroError`` like the client unless it says
otherwise, and none touches the database.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.utils import timezone

from apps.audit.models import AuditAction
from apps.zero import desired
from apps.zero import ppl as ppl_lib
from apps.zero.client import ZeroClient, ZeroError, ZeroPermanentError
from apps.zero.models import PolicySync
from apps.zero.outcomes import PassResult

logger = logging.getLogger("apps.zero.sync")

ACTIVITY_LOOKBACK = 20


def hand_editors(client: ZeroClient, state: PolicySync, policy_id: str) -> list[str] | None:
    """Who edited the policy since our last write, newest first; None if Zero won't say.

    Walks the activity log back to the entry whose data is our last write (by digest),
    or, when entries carry no data, to our last write's time.
    """
    try:
        entries = client.activity_logs(policy_id, limit=ACTIVITY_LOOKBACK)
    except ZeroError as exc:
        logger.info("Zero activity log of %s unavailable: %s", policy_id, exc)
        return None
    editors: list[str] = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        data = (entry.get("entity") or {}).get("data")
        if isinstance(data, dict) and "ppl" in data:
            if desired.state_digest(desired.managed_state(data)) == state.remote_digest:
                break
        else:
            created = ppl_lib.parse_rfc3339(entry.get("createdAt"))
            if created and state.last_written_at and created <= state.last_written_at:
                break
        user = entry.get("user") or {}
        who = user.get("email") or user.get("displayName") or user.get("id")
        if who and who not in editors:
            editors.append(str(who))
    return editors


def attached_routes(
    client: ZeroClient, state: PolicySync, policy: dict[str, Any], policy_id: str, force: bool
) -> list[dict[str, Any]]:
    """Routes the policy is attached to: from the routes listing on forced passes (it has
    the ``from`` URLs), otherwise from the policy's own ``routes`` when they changed."""
    cached = state.routes if isinstance(state.routes, list) else []
    if force:
        try:
            listing = client.list_routes()
        except ZeroError as exc:
            logger.info("Zero routes listing unavailable: %s", exc)
            return cached
        return [
            {"id": r.get("id"), "name": r.get("name"), "from": r.get("from")}
            for r in listing
            if isinstance(r, dict) and policy_id in (r.get("policyIds") or [])
        ]
    refs = policy.get("routes")
    if not isinstance(refs, list):
        return cached
    known = {r.get("id"): r for r in cached if isinstance(r, dict)}
    if {r.get("id") for r in refs if isinstance(r, dict)} == set(known):
        return cached
    return [
        {"id": r.get("id"), "name": r.get("name"), "from": known.get(r.get("id"), {}).get("from")}
        for r in refs
        if isinstance(r, dict)
    ]


def settle_changesets(client: ZeroClient, policy: dict[str, Any], result: PassResult) -> None:
    """Make sure our change is applied, or note that it waits (one settings read)."""
    cluster = client.cluster_settings()
    if cluster.get("autoApplyChangesets") is True:
        return
    namespace = policy.get("namespaceId")
    ours = [
        c
        for c in client.pending_changesets()
        if isinstance(c, dict) and c.get("id") and _touches(c, result.policy_id, namespace)
    ]
    if not ours:
        return
    if not settings.ZERO_APPLY_CHANGESETS:
        result.pending_changesets = [str(c["id"]) for c in ours]
        return
    for changeset in ours:
        answer = client.apply_changeset(str(changeset["id"])) or {}
        status = answer.get("status", "applied")
        if status in ("failed", "rejected"):
            reason = answer.get("failureMessage") or "no reason given"
            raise ZeroPermanentError(f"Zero changeset {changeset['id']} {status}: {reason}")
        if status == "applying":
            result.pending_changesets.append(str(changeset["id"]))
            continue
        result.applied_changesets.append(str(changeset["id"]))
        result.audit(
            AuditAction.ZERO_CHANGESET_APPLIED,
            {
                "changeset_id": str(changeset["id"]),
                "policy_id": result.policy_id,
                "status": status,
                "zero_applied_at": answer.get("appliedAt"),
            },
        )
    result.confirmed_at = timezone.now()


def _touches(changeset: dict[str, Any], policy_id: str, namespace: object) -> bool:
    """Is this pending changeset (possibly) ours? Only changes to our policy are applied
    when Zero lists them; without that list, any in our namespace may be."""
    if namespace and changeset.get("namespaceId") not in (None, "", namespace):
        return False
    changes = changeset.get("changes")
    if isinstance(changes, list) and changes:
        return any(isinstance(c, dict) and c.get("entityId") == policy_id for c in changes)
    return True
