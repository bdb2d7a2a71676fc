"""The read-mostly Zero calls of a sync pass: who edited a policy, which routes use it,
and whether the portal's change is enforced (changesets).

Helpers of ``apps.pomerium.sync``; each raises ``ZeroError`` like the client unless it says
otherwise, and none writes to the database.

How "enforced" is decided (docs/zero-api.md, "Changesets"):

* Only an answer about the write itself proves it: the write's activity-log entry. A
  cluster with ``autoApplyChangesets: true`` applies an API write when it answers it, and
  the entry then carries ``applied.at``. A remembered ``autoApplyChangesets`` never
  confirms anything (an operator may have turned it off since it was read); a settings
  read made after the write stands in only when the log shows nothing yet, and the tick
  re-checks what it confirmed.
* Otherwise the write waits in the namespace's pending changeset, together with whatever
  anyone else changed there. A changeset lists no entities, so the one link from our
  write to it is our policy's newest activity-log entry, ``applied.changesetId``. That
  changeset's ``status`` decides: ``applied``/``current`` enforced, ``failed``/
  ``rejected`` never took effect, ``pending``/``applying`` not yet. A missing or unknown
  status is never read as applied.
* With ``ZERO_APPLY_CHANGESETS`` the portal applies a pending changeset itself, but only
  when Zero's activity log lists the portal's own write under it and shows that every
  change in it is the portal's own: made by the portal's own Zero API user AND holding
  content the portal attempted to write to that policy (``apps.pomerium.identity``, the one
  home of that rule). Anything else in it (another user's console edit, even to a policy
  the portal manages; a route; a setting; a deletion; an entry whose content the log does
  not show) and the changeset is left pending for a human, and the row, the audit trail
  and the grants say who changed which policy.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone

from apps import ppl as ppl_lib
from apps.pomerium import desired, identity
from apps.pomerium.client import ZeroClient, ZeroError, ZeroPermanentError, ZeroTransientError
from apps.pomerium.identity import Identity
from apps.pomerium.models import PolicySync
from apps.pomerium.outcomes import PassResult
from apps.pomerium.port import PolicyStore

from .actions import ZeroAction

logger = logging.getLogger("apps.pomerium.sync")

ACTIVITY_LOOKBACK = 20


def _obj(value: object) -> dict[str, Any]:
    """A JSON object from an answer, or ``{}`` for anything else (absent, null, junk)."""
    return value if isinstance(value, dict) else {}


ENFORCED = frozenset({"applied", "current"})
CONFIRMED_BY_SETTINGS = "settings"
NEVER_APPLIED = frozenset({"failed", "rejected"})
MAX_LISTED_FOREIGN = 5


# --------------------------------------------------------------------------- #
# Who changed the policy
# --------------------------------------------------------------------------- #


def hand_editors(
    client: ZeroClient,
    state: PolicySync,
    policy_id: str,
    found_digest: str,
    own: Identity | None,
) -> tuple[list[str], bool] | None:
    """Who changed the policy since our last confirmed write, newest first, and whether
    the content Zero now holds is the portal's own write; None if Zero won't say.

    Walks the activity log back to the entry of our last confirmed write (by digest) or,
    when entries carry no data, to that write's time. An entry is ours only by the one
    rule (``identity.is_own_change``: our own API user AND content we attempted); every
    other entry names an editor. The content Zero holds is ours when no other editor
    shows up and it equals one of our write attempts (a write whose answer was lost).
    """
    try:
        entries = client.activity_logs(
            entityType="policy", entityId=policy_id, limit=ACTIVITY_LOOKBACK
        )
    except ZeroError as exc:
        logger.info("Zero activity log of %s unavailable: %s", policy_id, exc)
        return None
    attempted = {policy_id: set(state.attempted_digests or [])}
    window: list[dict[str, Any]] = []
    for entry in entries:
        digest = identity.entry_digest(entry)
        if digest is not None and digest == state.remote_digest:
            break
        if digest is None:
            created = ppl_lib.parse_rfc3339(entry.get("createdAt"))
            if created and state.last_written_at and created <= state.last_written_at:
                break
        window.append(entry)
    editors: list[str] = []
    for entry in window:
        if identity.is_own_change(entry, own, attempted):
            continue
        who = identity.author(entry) or "an unnamed Zero user"
        if who not in editors:
            editors.append(who)
    return editors, not editors and found_digest in attempted[policy_id]


# --------------------------------------------------------------------------- #
# Routes
# --------------------------------------------------------------------------- #


def attached_routes(
    client: PolicyStore, state: PolicySync, policy: dict[str, Any], policy_id: str, force: bool
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


# --------------------------------------------------------------------------- #
# Enforcement: a read-back (no changesets)
# --------------------------------------------------------------------------- #

CONFIRMED_BY_READ_BACK = "read_back"


def read_back(client: PolicyStore, result: PassResult, wanted_digest: str) -> None:
    """On a target that applies a write at once (no changesets), prove the policy holds
    what the portal wants by reading it back: equal managed content confirms it
    (``read_back``). Anything else raises ``ZeroTransientError``: someone wrote in between
    (last write wins), and the next pass finds it as drift, repairs and audits it."""
    policy = client.get_policy(result.policy_id)
    found = desired.state_digest(desired.managed_state(policy))
    if found != wanted_digest:
        raise ZeroTransientError(
            f"policy {result.policy_id} read back with other content than the portal wrote "
            "(someone else wrote it meanwhile); it is compared and repaired on the next pass"
        )
    _confirmed(result, timezone.now(), CONFIRMED_BY_READ_BACK)


# --------------------------------------------------------------------------- #
# Enforcement: changesets
# --------------------------------------------------------------------------- #


def settle_changesets(
    client: ZeroClient,
    state: PolicySync,
    result: PassResult,
    own: Identity | None,
    *,
    written_at: datetime,
) -> None:
    """Decide whether what the policy now holds is enforced; fill ``result``.

    Sets ``result.confirmed_at`` (and ``confirmed_by``) when Zero says it is enforced, or
    ``result.pending_apply`` with ``result.pending_reason`` when it is not yet. Raises
    ``ZeroPermanentError`` when the changeset carrying our write failed or was rejected:
    that write never took effect.

    Enforcement is proven by the write's own activity entry, never by a remembered
    setting: its ``applied.at`` without a changeset (an auto-applied write: ``activity``),
    or the ``applied``/``current`` status of the changeset it names (``changeset``). Only
    when the log shows neither a link nor ``applied.at`` (it lags, or the write is not
    listed yet) does a settings read made now, after the write, stand in:
    ``autoApplyChangesets: true`` confirms it (``settings``), and the 30 s tick keeps
    re-checking such a policy until its entry proves it.
    """
    entries = client.activity_logs(
        entityType="policy", entityId=result.policy_id, limit=ACTIVITY_LOOKBACK
    )
    own = _learn(client, result, entries) or own
    entry = _newest_write(entries, result.remote_digest)
    applied = _obj(entry.get("applied")) if entry is not None else {}
    changeset_id = str(applied.get("changesetId") or "")
    applied_at = ppl_lib.parse_rfc3339(applied.get("at"))
    if not changeset_id:
        if applied_at is not None:
            _confirmed(result, applied_at, "activity")
        elif client.auto_apply_changesets(max_age=0):  # read now: after the write
            _confirmed(result, written_at, "settings")
        elif entry is None:
            _wait(result, None, "Zero's activity log shows no write of this policy yet")
        else:
            _wait(result, None, "Zero has not yet linked the portal's write to a changeset")
        return
    assert entry is not None  # the changeset id came from it
    changeset = client.find_changeset(changeset_id)
    status = str(changeset.get("status") or "") if changeset else ""
    if status in ENFORCED:
        assert changeset is not None
        _confirmed(result, applied_at or _updated_at(changeset), "changeset")
        return
    if status in NEVER_APPLIED:
        assert changeset is not None
        raise _never_applied(changeset_id, status, changeset)
    if status != "pending":
        shown = status or "not listed by Zero"
        _wait(result, changeset_id, f"changeset {changeset_id} is {shown}; checked again soon")
        return
    if not settings.ZERO_APPLY_CHANGESETS:
        _wait(
            result,
            changeset_id,
            f"changeset {changeset_id} waits for someone to apply it in the Zero console "
            "(ZERO_APPLY_CHANGESETS is off)",
        )
        return
    foreign = foreign_changes(client, changeset_id, entry, own)
    if foreign:
        lines = [change.line for change in foreign]
        listed = "; ".join(lines[:MAX_LISTED_FOREIGN])
        more = len(foreign) - MAX_LISTED_FOREIGN
        if more > 0:
            listed += f"; and {more} more"
        reason = (
            f"changeset {changeset_id} also holds {len(foreign)} change(s) the portal did not "
            f"make ({listed}). Applying it would deploy them too, so a human must review and "
            "apply it in the Zero console"
        )
        if changeset_id not in (state.pending_changeset_ids or []):
            result.audit(
                ZeroAction.ZERO_CHANGESET_WAITING,
                {
                    "changeset_id": changeset_id,
                    "policy_id": result.policy_id,
                    "foreign_changes": lines[:MAX_LISTED_FOREIGN],
                    "foreign_count": len(foreign),
                    "editors": sorted({c.editor for c in foreign if c.editor}),
                    "policies": sorted({c.policy for c in foreign if c.policy}),
                    "own_api_user": str(own) if own else None,
                },
            )
        _wait(result, changeset_id, reason)
        return
    answer = client.apply_changeset(changeset_id)
    status = str(answer.get("status") or "")
    result.applied_changesets.append(changeset_id)
    result.audit(
        ZeroAction.ZERO_CHANGESET_APPLIED,
        {
            "changeset_id": changeset_id,
            "policy_id": result.policy_id,
            "status": status or None,
            # Every change in it was this user's, with content the portal attempted.
            "own_api_user": str(own) if own else None,
        },
    )
    if status in ENFORCED:
        _confirmed(result, _updated_at(answer), "changeset")
    elif status in NEVER_APPLIED:
        raise _never_applied(changeset_id, status, answer)
    else:
        result.applying = True
        _wait(result, changeset_id, f"changeset {changeset_id} is being applied")


@dataclass(frozen=True)
class ForeignChange:
    """One change in a changeset that is not the portal's own, for people to read."""

    line: str  # e.g. "update policy 'jit-hr-records' by mallory@example.com: made by another..."
    editor: str  # who made it, as the activity log names them; "" if it does not
    policy: str  # the policy's name (or id) when the change is to a policy; else ""


def foreign_changes(
    client: ZeroClient,
    changeset_id: str,
    ours: Mapping[str, Any],
    own: Identity | None,
) -> list[ForeignChange]:
    """Every change in the changeset that is not the portal's own by the one rule
    (``identity.is_own_change``), one readable line each. If the log does not even list our
    own write under the changeset, it is incomplete, and that is reported as a foreign
    (unknown) change too."""
    entries = client.activity_logs(changesetId=changeset_id)
    attempted = _attempted(entries)
    foreign = []
    for entry in entries:
        why = identity.why_foreign(entry, own, attempted)
        if why is not None:
            foreign.append(_describe(entry, why))
    if ours.get("id") and not any(e.get("id") == ours.get("id") for e in entries):
        foreign.append(ForeignChange("changes Zero's activity log does not list yet", "", ""))
    return foreign


def _attempted(entries: Iterable[Mapping[str, Any]]) -> dict[str, set[str]]:
    """Policy id -> the digests the portal attempted for it, for the policies in ``entries``."""
    ids = {str(_obj(e.get("entity")).get("id")) for e in entries}
    rows = PolicySync.objects.filter(remote_policy_id__in=ids).values_list(
        "remote_policy_id", "attempted_digests"
    )
    attempted: dict[str, set[str]] = {}
    for policy_id, digests in rows:
        attempted.setdefault(policy_id, set()).update(digests or [])
    return attempted


def _describe(entry: Mapping[str, Any], why: str) -> ForeignChange:
    entity = _obj(entry.get("entity"))
    data = _obj(entity.get("data"))
    what = f"{entry.get('activityType') or 'change'} {entity.get('type') or 'entity'}"
    name = data.get("name") or entity.get("id")
    if name:
        what += f" {name!r}"
    who = identity.author(entry)
    line = f"{what} by {who}" if who else what
    policy = str(name or "") if entity.get("type") == "policy" else ""
    return ForeignChange(f"{line}: {why}", who or "", policy)


def _learn(
    client: ZeroClient, result: PassResult, entries: list[dict[str, Any]]
) -> Identity | None:
    """Learn the portal's own Zero user from the entry of the write this pass made, when
    the write was answered (see ``identity.learn``)."""
    if result.learnable is None:
        return None
    kind, previous = result.learnable
    return identity.learn(
        client.cluster_id,
        result.policy_id,
        entries,
        written_digest=result.remote_digest,
        previous_digest=None if kind == "create" else previous,
    )


def _newest_write(entries: Iterable[Mapping[str, Any]], digest: str) -> Mapping[str, Any] | None:
    """The entry of the write Zero now holds: the newest one whose data has ``digest``,
    else (entries without data) the newest entry at all."""
    listed = list(entries)
    for entry in listed:
        if identity.entry_digest(entry) == digest:
            return entry
    data_less = [e for e in listed if identity.entry_digest(e) is None]
    return data_less[0] if data_less else None


def _updated_at(changeset: Mapping[str, Any]) -> datetime:
    return ppl_lib.parse_rfc3339(changeset.get("updatedAt")) or timezone.now()


class ChangesetNeverApplied(ZeroPermanentError):
    """The changeset carrying the portal's write failed or was rejected."""


def _never_applied(changeset_id: str, status: str, changeset: Mapping[str, Any]) -> ZeroError:
    reason = changeset.get("failureMessage") or "Zero gave no reason"
    return ChangesetNeverApplied(f"Zero changeset {changeset_id} {status}: {reason}")


def _confirmed(result: PassResult, at: datetime, by: str) -> None:
    result.confirmed_at = at
    result.confirmed_by = by


def _wait(result: PassResult, changeset_id: str | None, reason: str) -> None:
    result.pending_apply = True
    result.pending_reason = reason
    if changeset_id and changeset_id not in result.pending_changesets:
        result.pending_changesets.append(changeset_id)
