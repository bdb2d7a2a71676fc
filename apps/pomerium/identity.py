"""Whose change is it? The portal's own Zero user, and the one rule that tells the portal's
own writes from everyone else's in Zero's activity log.

**The rule** (docs/zero-api.md, "Whose change is it?"). An activity-log entry is the
portal's own change only when BOTH hold:

1. its author (``user``) is the portal's own Zero API user in that cluster: the entry's
   ``user.id`` equals the known id (or, when only an email is known, ``user.email``
   equals it); and
2. its content equals a write the portal attempted for that policy: the entry is a
   ``create`` or ``update`` of a ``policy`` whose ``entity.data`` has the managed digest
   of one of that policy's remembered write attempts (``PolicySync.attempted_digests``).

Anything else is someone else's change: another author (a console user such as Mallory,
even when her content equals one of our writes), our own user with content we never
attempted, a deletion, an entry without data (its content cannot be checked), another
entity type (a route, a setting), or any entry at all while the portal does not know its
own user. Nothing is inferred from a policy's name or from the entity being managed.

**Knowing the portal's own user.** Nothing in Zero's published contract says what the
token exchange returns about identity, so the portal never decodes the ID token for it.
Two sources, the setting first:

* ``ZERO_API_USER_ID``: the Zero user id of the API user, as the activity log shows it on
  the portal's writes. When set it is the identity in every cluster, and a learnt one
  that disagrees is reported, never used.
* Learnt once per cluster, and pinned: from the ``create`` entry of a policy whose id
  Zero gave the portal in the answer to its own create, with the content the portal sent
  (nobody else can have created that id); or from the ``update`` entry of a replace the
  portal made and got an answer to, when that entry holds the portal's content AND the
  entry just before it holds exactly what the portal read before writing (so the entry is
  the change the portal made, not someone copying its content afterwards). The pinned
  identity is never replaced by learning; it changes only through the setting.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils import timezone

from apps import ppl as ppl_lib
from apps.pomerium import desired
from apps.pomerium.models import ZeroCluster

__all__ = [
    "Identity",
    "author",
    "entry_digest",
    "is_own_change",
    "learn",
    "own_identity",
    "why_foreign",
]

logger = logging.getLogger("apps.pomerium.sync")

OWN_ACTIVITY = frozenset({"create", "update"})


@dataclass(frozen=True)
class Identity:
    """The portal's own Zero user in one cluster, and where that knowledge came from."""

    user_id: str
    email: str
    source: str

    def matches(self, user: object) -> bool:
        """Is ``user`` (an activity entry's ``user`` object) this identity?"""
        if not isinstance(user, dict):
            return False
        if self.user_id:
            return str(user.get("id") or "") == self.user_id
        return bool(self.email) and str(user.get("email") or "") == self.email

    def __str__(self) -> str:
        shown = self.email or self.user_id
        if self.email and self.user_id:
            shown = f"{self.email} (id {self.user_id})"
        return shown


def _obj(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def entry_digest(entry: Mapping[str, Any]) -> str | None:
    """The managed-state digest of an activity entry's data; None when it carries none."""
    data = _obj(entry.get("entity")).get("data")
    if isinstance(data, dict) and "ppl" in data:
        return desired.state_digest(desired.managed_state(data))
    return None


def author(entry: Mapping[str, Any]) -> str | None:
    """Who made the change, readably: email, else display name, else id; None if unnamed."""
    user = entry.get("user")
    if not isinstance(user, dict):
        return None
    who = user.get("email") or user.get("displayName") or user.get("id")
    return str(who) if who else None


def own_identity(cluster_id: str) -> Identity | None:
    """The portal's own Zero user in ``cluster_id``: the setting, else the pinned one;
    None while it is unknown (then no change counts as the portal's own)."""
    configured = str(getattr(settings, "ZERO_API_USER_ID", "") or "")
    if configured:
        return Identity(configured, "", "setting ZERO_API_USER_ID")
    row = ZeroCluster.objects.filter(cluster_id=cluster_id).first()
    if row is None or not (row.api_user_id or row.api_user_email):
        return None
    return Identity(row.api_user_id, row.api_user_email, row.identity_source)


def why_foreign(
    entry: Mapping[str, Any],
    identity: Identity | None,
    attempted: Mapping[str, Collection[str]],
) -> str | None:
    """Why ``entry`` is not the portal's own change (see the module docstring), or None
    when it is. ``attempted`` maps a policy id to the digests the portal attempted for it."""
    entity = _obj(entry.get("entity"))
    if entity.get("type") != "policy":
        return f"a change to a {entity.get('type') or 'entity'}, not to a policy"
    if entry.get("activityType") not in OWN_ACTIVITY:
        return f"a {entry.get('activityType') or 'change'} the portal did not make"
    if identity is None:
        return "the portal does not know its own Zero user yet (set ZERO_API_USER_ID)"
    if not identity.matches(entry.get("user")):
        return "made by another Zero user"
    digest = entry_digest(entry)
    if digest is None:
        return "Zero's activity log does not show its content"
    if digest not in attempted.get(str(entity.get("id")), ()):
        return "content the portal never wrote to this policy"
    return None


def is_own_change(
    entry: Mapping[str, Any],
    identity: Identity | None,
    attempted: Mapping[str, Collection[str]],
) -> bool:
    """The rule: the portal's own API user AND content the portal attempted for the policy."""
    return why_foreign(entry, identity, attempted) is None


def learn(
    cluster_id: str,
    policy_id: str,
    entries: Sequence[Mapping[str, Any]],
    *,
    written_digest: str,
    previous_digest: str | None,
) -> Identity | None:
    """Pin the portal's own Zero user for ``cluster_id`` from the entry of a write the
    portal just made and got Zero's answer to; returns it when newly pinned.

    ``entries`` are the policy's activity entries, newest first. ``previous_digest`` is
    what the portal read before its replace, or None for a create (then ``policy_id`` is
    the id Zero gave in its answer to the portal's create). Nothing is learnt when an
    identity is already pinned, or when the entries do not single out the portal's write.
    """
    if ZeroCluster.objects.filter(cluster_id=cluster_id).exclude(api_user_id="", api_user_email=""):
        return None
    listed = [e for e in entries if str(_obj(e.get("entity")).get("id")) == policy_id]
    candidate: Mapping[str, Any] | None = None
    how = ""
    if previous_digest is None:
        creates = [e for e in listed if e.get("activityType") == "create"]
        if len(creates) == 1 and entry_digest(creates[0]) == written_digest:
            candidate, how = creates[0], "the create entry of"
    else:
        # The write whose content replaced exactly what the portal read before writing.
        for newer, older in itertools.pairwise(listed):
            if (
                newer.get("activityType") == "update"
                and entry_digest(newer) == written_digest
                and entry_digest(older) == previous_digest
            ):
                candidate, how = newer, "the update entry of"
                break
        ours = [e for e in listed if entry_digest(e) == written_digest]
        if candidate is not None and len(ours) != 1:
            candidate = None  # someone else wrote the same content too: learn nothing
    if candidate is None:
        return None
    user = _obj(candidate.get("user"))
    user_id, email = str(user.get("id") or ""), str(user.get("email") or "")
    if not (user_id or email):
        return None
    when = ppl_lib.parse_rfc3339(candidate.get("createdAt"))
    source = (
        f"learnt from {how} the portal's own write to policy {policy_id} "
        f"(activity entry {candidate.get('id')}" + (f", {when.isoformat()}" if when else "") + ")"
    )
    # Pinned once, never overwritten: the conditional UPDATE changes nothing when another
    # worker pinned one first. Not an audit entry of its own: the row says where it came
    # from, and every changeset the portal applies or leaves names the identity it used.
    row, _ = ZeroCluster.objects.get_or_create(cluster_id=cluster_id)
    pinned = ZeroCluster.objects.filter(pk=row.pk, api_user_id="", api_user_email="").update(
        api_user_id=user_id,
        api_user_email=email,
        identity_source=source,
        identity_learnt_at=timezone.now(),
    )
    if not pinned:
        return None
    identity = Identity(user_id, email, source)
    configured = str(getattr(settings, "ZERO_API_USER_ID", "") or "")
    if configured and configured != user_id:
        logger.warning(
            "Zero cluster %s: the portal's writes are made by Zero user %s, but "
            "ZERO_API_USER_ID names %s; the setting is used",
            cluster_id,
            identity,
            configured,
        )
    else:
        logger.info("Zero cluster %s: the portal's own Zero user is %s", cluster_id, identity)
    return identity
