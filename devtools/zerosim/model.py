"""The Zero simulator's stored model: policy versions, changesets, and the internals
every part of ``SimState`` shares (views, the effective version, applying a changeset).

See ``state`` for what is simulated; this module only holds the pieces.
"""

from __future__ import annotations

import copy
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from apps.pomerium import contract
from devtools.zerosim.views import timestamp

__all__ = [
    "API_USER",
    "APPLIED",
    "FAILED",
    "POLICY_PROPERTIES",
    "Changeset",
    "PolicyVersion",
    "StateBase",
    "console_user",
]

# Every PolicyProperties key the contract defines (required and optional), in its order.
POLICY_PROPERTIES: tuple[str, ...] = tuple(contract.schema("PolicyProperties")["properties"])
API_USER = {"id": "api-user-sim", "email": "api@sim", "displayName": "API user"}
APPLIED = ("applied", "current")
FAILED = ("failed", "rejected")


@dataclass
class PolicyVersion:
    """One write to a policy. ``record`` is None for a deletion."""

    record: dict[str, Any] | None
    created_at: datetime
    seq: int
    changeset_id: str | None = None
    applied_at: datetime | None = None
    activity: dict[str, Any] = field(default_factory=dict)


@dataclass
class Changeset:
    id: str
    namespace_id: str
    status: str
    created_at: datetime
    updated_at: datetime
    failure_message: str | None = None
    applied_seq: int | None = None  # order of application, for "current"
    due: float | None = None  # monotonic time an "applying" changeset finishes
    outcome: tuple[str, str] | None = None  # failure decided when apply was called
    applier: dict[str, str] = field(default_factory=dict)


def console_user(email: str) -> dict[str, str]:
    return {"id": "user-" + email, "email": email, "displayName": email}


class StateBase:
    """Attributes and internals shared by the parts of ``SimState`` (not used alone)."""

    organization_id: str
    cluster_id: str
    namespace_id: str
    auto_apply: bool
    clock: Callable[[], datetime]
    max_page_size: int
    apply_delay: float
    allow_duplicate_names: bool
    record_auto_applied: bool
    ppl_as_array: bool
    apply_failure: tuple[str, str] | None
    activity_delay: float
    refused_ppl: tuple[str, ...]
    logged_at: dict[str, float]  # activity entry id -> monotonic time it was made
    api_user: dict[str, str]
    lock: threading.RLock
    versions: dict[str, list[PolicyVersion]]
    changesets: dict[str, Changeset]
    activity: list[dict[str, Any]]
    routes: list[dict[str, Any]]
    write_count: int
    _seq: int

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _now(self) -> datetime:
        return self.clock()

    def _latest(self, policy_id: str) -> dict[str, Any] | None:
        versions = self.versions.get(policy_id)
        return versions[-1].record if versions else None

    def _effective_version(self, policy_id: str) -> PolicyVersion | None:
        for version in reversed(self.versions.get(policy_id, [])):
            if version.applied_at is not None:
                return version
        return None

    def _live(self) -> list[dict[str, Any]]:
        """Latest non-deleted records, in creation order."""
        return [r for pid in self.versions if (r := self._latest(pid)) is not None]

    def _view(self, record: Mapping[str, Any]) -> dict[str, Any]:
        view = copy.deepcopy(dict(record))
        if self.ppl_as_array and isinstance(view["ppl"], dict):
            view["ppl"] = [view["ppl"]]  # a server may answer the rule object as a list of one
        refs = [
            {"id": r["id"], "name": r["name"], "updatedAt": r["updatedAt"]}
            for r in self.routes
            if record["id"] in r["policyIds"] and r["namespaceId"] == record["namespaceId"]
        ]
        view["routes"] = refs
        view["enforcedRoutes"] = (
            [
                {"id": r["id"], "name": r["name"], "updatedAt": r["updatedAt"]}
                for r in self.routes
                if r["namespaceId"] == record["namespaceId"]
            ]
            if record["enforced"]
            else []
        )
        return view

    def _find(self, name_or_id: str, *, effective: bool) -> list[tuple[str, PolicyVersion]]:
        found = []
        for pid, versions in self.versions.items():
            version = self._effective_version(pid) if effective else versions[-1]
            if version is None or version.record is None:
                continue
            if name_or_id in (pid, version.record["name"]):
                found.append((pid, version))
        return found

    def _advance(self) -> None:
        """Finish "applying" changesets whose delay has passed."""
        now = time.monotonic()
        for changeset in self.changesets.values():
            if (
                changeset.status == "applying"
                and changeset.due is not None
                and changeset.due <= now
            ):
                self._finish(changeset)

    def _finish(self, changeset: Changeset) -> None:
        now = self._now()
        changeset.updated_at = now
        changeset.due = None
        if changeset.outcome is not None:
            changeset.status, changeset.failure_message = changeset.outcome
            return
        changeset.status = "applied"
        changeset.applied_seq = self._next_seq()
        for versions in self.versions.values():
            for version in versions:
                if version.changeset_id == changeset.id:
                    version.applied_at = now
                    version.activity["applied"]["at"] = timestamp(now)
                    version.activity["applied"]["by"] = dict(changeset.applier)
                    version.activity["updatedAt"] = timestamp(now)

    def _pending(self, namespace_id: str) -> Changeset:
        for changeset in self.changesets.values():
            if changeset.namespace_id == namespace_id and changeset.status == "pending":
                return changeset
        now = self._now()
        changeset = Changeset(str(uuid.uuid4()), namespace_id, "pending", now, now)
        self.changesets[changeset.id] = changeset
        return changeset

    def _page(self, items: list[Any], limit: int | None, offset: int) -> list[Any]:
        # The HTTP layer caps ``limit`` at ``max_page_size``; Python callers may ask for all.
        return items[offset:] if limit is None else items[offset : offset + limit]

    def _changeset_view(self, changeset: Changeset, *, relabel: bool = True) -> dict[str, Any]:
        status = changeset.status
        if relabel and status == "applied":
            newest = max(
                (
                    c.applied_seq
                    for c in self.changesets.values()
                    if c.namespace_id == changeset.namespace_id
                    and c.status == "applied"
                    and c.applied_seq is not None
                ),
                default=None,
            )
            if newest is not None and newest == changeset.applied_seq:
                status = "current"
        view: dict[str, Any] = {
            "id": changeset.id,
            "namespaceId": changeset.namespace_id,
            "status": status,
            "createdAt": timestamp(changeset.created_at),
            "updatedAt": timestamp(changeset.updated_at),
        }
        if changeset.failure_message is not None:
            view["failureMessage"] = changeset.failure_message
        return view
