"""In-memory model behind the Zero simulator: policies, changesets, activity log, routes.

No HTTP here: ``sim_handler`` maps requests onto these methods and
``simulator.ZeroSimulator`` owns the instance. Every public method takes the
state lock, so the model is safe under the threading HTTP server. Written from
the contract (``docs/zero-api.md``), never from the portal's client; where the
contract is silent it takes the strictest plausible reading.

Two views of a policy exist:

* the *latest* version is what the API returns (GET and list show a pending
  edit, as the Zero console shows an edited policy before it is deployed);
* the *effective* version is the newest write that has been applied, and is
  what the evaluator (the "proxy") enforces.

With ``auto_apply`` on, a write takes effect at once: its activity entry gets
``applied.at`` and, by default, no changeset (``record_auto_applied=True``
records an applied changeset per write instead). With it off, every write
(API writes and console hand edits alike) joins the namespace's ONE pending
changeset. Applying it answers ``applying`` and, ``apply_delay`` seconds later,
the changeset is ``applied`` (the newest applied one of a namespace reads
``current``) or, when ``apply_failure`` is set, ``failed``/``rejected`` with a
``failureMessage``; a failed changeset's writes never take effect.
"""

from __future__ import annotations

import copy
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import yaml

from apps.zero import contract, sim_ppl
from apps.zero.sim_views import (
    ACTIVITY_ORDER,
    CHANGESET_ORDER,
    POLICY_ORDER,
    ROUTE_ORDER,
    SimError,
    apply_json_patch,
    order,
    timestamp,
)

__all__ = ["API_USER", "POLICY_PROPERTIES", "SimError", "SimState", "timestamp"]

POLICY_PROPERTIES = (
    "name",
    "description",
    "explanation",
    "remediation",
    "enforced",
    "namespaceId",
    "ppl",
    "originatorId",
)
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


def parse_console_ppl(ppl: object) -> object:
    """A console edit may be typed as JSON or YAML text; the API only ever sees structure."""
    if not isinstance(ppl, str):
        return copy.deepcopy(ppl)
    try:
        parsed: object = json.loads(ppl)
    except ValueError:
        try:
            parsed = yaml.safe_load(ppl)
        except yaml.YAMLError:
            raise ValueError("console PPL is neither JSON nor YAML") from None
    return parsed


class SimState:
    """Everything the simulated organization holds; see the module docstring."""

    def __init__(
        self,
        organization_id: str,
        cluster_id: str,
        namespace_id: str,
        *,
        auto_apply: bool = True,
        clock: Callable[[], datetime] | None = None,
        max_page_size: int = 10,
        apply_delay: float = 0.2,
        allow_duplicate_names: bool = False,
        record_auto_applied: bool = False,
    ) -> None:
        self.organization_id = organization_id
        self.cluster_id = cluster_id
        self.namespace_id = namespace_id
        self.auto_apply = auto_apply
        self.clock = clock or (lambda: datetime.now(UTC))
        self.max_page_size = max_page_size
        self.apply_delay = apply_delay
        self.allow_duplicate_names = allow_duplicate_names
        self.record_auto_applied = record_auto_applied
        self.apply_failure: tuple[str, str] | None = None
        self.api_user = dict(API_USER)
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        """Drop policies, routes, changesets and logs; zero the write counter."""
        with self.lock:
            self.versions: dict[str, list[PolicyVersion]] = {}
            self.changesets: dict[str, Changeset] = {}
            self.activity: list[dict[str, Any]] = []
            self.routes: list[dict[str, Any]] = []
            self.write_count = 0
            self.apply_failure = None
            self._seq = 0

    # ----------------------------------------------------------- internals

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

    def _commit(
        self,
        policy_id: str,
        record: dict[str, Any] | None,
        activity_type: str,
        user: Mapping[str, str],
        previous: Mapping[str, Any] | None = None,
    ) -> PolicyVersion:
        now = self._now()
        namespace_id = (record or previous or {}).get("namespaceId", self.namespace_id)
        version = PolicyVersion(record=record, created_at=now, seq=self._next_seq())
        applied: dict[str, Any] = {"by": {}}
        if self.auto_apply:
            version.applied_at = now
            applied = {"at": timestamp(now), "by": dict(user)}
            if self.record_auto_applied:
                changeset = Changeset(str(uuid.uuid4()), namespace_id, "applied", now, now)
                changeset.applied_seq = version.seq
                self.changesets[changeset.id] = changeset
                version.changeset_id = changeset.id
                applied["changesetId"] = changeset.id
        else:
            changeset = self._pending(namespace_id)
            changeset.updated_at = now
            version.changeset_id = changeset.id
            applied["changesetId"] = changeset.id
        data = record if record is not None else previous
        version.activity = {
            "id": str(uuid.uuid4()),
            "activityType": activity_type,
            "createdAt": timestamp(now),
            "updatedAt": timestamp(now),
            "entity": {"id": policy_id, "type": "policy", "data": copy.deepcopy(dict(data or {}))},
            "user": dict(user),
            "namespace": {"id": namespace_id, "name": self.cluster_id},
            "applied": applied,
        }
        self.activity.append(version.activity)
        self.versions.setdefault(policy_id, []).append(version)
        return version

    def _properties(self, body: object) -> dict[str, Any]:
        """A PolicyProperties body checked against the contract and Pomerium's PPL rules."""
        problems = contract.errors("PolicyProperties", body)
        if problems:
            raise SimError(400, "body is not a valid PolicyProperties", problems)
        assert isinstance(body, dict)
        problems = [p.replace("$", "$.ppl", 1) for p in sim_ppl.validate(body["ppl"])]
        if problems:
            raise SimError(400, "invalid PPL", problems)
        if body["namespaceId"] != self.namespace_id:
            raise SimError(400, f"unknown namespaceId {body['namespaceId']!r}")
        return {key: copy.deepcopy(body[key]) for key in POLICY_PROPERTIES if key in body}

    def _check_unique(self, name: str, namespace_id: str, policy_id: str | None) -> None:
        if self.allow_duplicate_names:
            return
        for record in self._live():
            same = record["name"] == name and record["namespaceId"] == namespace_id
            if same and record["id"] != policy_id:
                raise SimError(409, f"a policy named {name!r} already exists in this namespace")

    def _page(self, items: list[Any], limit: int | None, offset: int) -> list[Any]:
        size = self.max_page_size if limit is None else min(limit, self.max_page_size)
        return items[offset : offset + size]

    def _require(self, policy_id: str) -> dict[str, Any]:
        record = self._latest(policy_id)
        if record is None:
            raise SimError(404, f"policy {policy_id} not found")
        return record

    def _update(
        self, policy_id: str, props: dict[str, Any], user: Mapping[str, str]
    ) -> dict[str, Any]:
        current = self._require(policy_id)
        if props["namespaceId"] != current["namespaceId"]:
            raise SimError(400, "namespaceId of a policy cannot change")
        self._check_unique(props["name"], props["namespaceId"], policy_id)
        record = {
            "id": policy_id,
            **props,
            "createdAt": current["createdAt"],
            "updatedAt": timestamp(self._now()),
        }
        self._commit(policy_id, record, "update", user)
        return self._view(record)

    # ------------------------------------------------------------- policies

    def list_policies(
        self,
        namespace_id: str,
        *,
        limit: int | None = None,
        offset: int = 0,
        order_by: str | None = None,
    ) -> list[dict[str, Any]]:
        """One page (at most ``max_page_size``) of the namespace's latest policies."""
        with self.lock:
            self._advance()
            records = [r for r in self._live() if r["namespaceId"] == namespace_id]
            records = order(records, order_by or "id", POLICY_ORDER)
            return [self._view(r) for r in self._page(records, limit, offset)]

    def get_policy(self, policy_id: str) -> dict[str, Any]:
        with self.lock:
            self._advance()
            return self._view(self._require(policy_id))

    def create_policy(self, body: object, user: Mapping[str, str] | None = None) -> dict[str, Any]:
        with self.lock:
            self._advance()
            props = self._properties(body)
            self._check_unique(props["name"], props["namespaceId"], None)
            now = timestamp(self._now())
            policy_id = str(uuid.uuid4())
            record = {"id": policy_id, **props, "createdAt": now, "updatedAt": now}
            self._commit(policy_id, record, "create", user or self.api_user)
            self.write_count += 1
            return self._view(record)

    def replace_policy(
        self, policy_id: str, body: object, user: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        with self.lock:
            self._advance()
            self._require(policy_id)  # 404 before 400, as a real API would
            view = self._update(policy_id, self._properties(body), user or self.api_user)
            self.write_count += 1
            return view

    def patch_policy(
        self, policy_id: str, operations: object, user: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """RFC 6902 on the policy's properties; the result must be a valid PolicyProperties."""
        with self.lock:
            self._advance()
            current = self._require(policy_id)
            problems = contract.errors("JsonPatch", operations)
            if problems:
                raise SimError(400, "body is not a valid JSON Patch", problems)
            document = {key: current[key] for key in POLICY_PROPERTIES if key in current}
            assert isinstance(operations, list)
            patched = apply_json_patch(document, operations)
            view = self._update(policy_id, self._properties(patched), user or self.api_user)
            self.write_count += 1
            return view

    def delete_policy(self, policy_id: str, user: Mapping[str, str] | None = None) -> None:
        with self.lock:
            self._advance()
            current = self._require(policy_id)
            self._commit(policy_id, None, "delete", user or self.api_user, previous=current)
            self.write_count += 1

    def hand_edit(
        self, policy_name: str, ppl: object = None, by_email: str = "", **fields: Any
    ) -> dict[str, Any]:
        """A console edit by a human: logged and changeset-bound, not counted in write_count.

        ``ppl`` may be structure or JSON/YAML text (the console parses it); other
        PolicyProperties are given as keywords. KeyError if no such policy,
        ValueError if the result is not a valid policy (the console refuses it too).
        """
        with self.lock:
            self._advance()
            found = self._find(policy_name, effective=False)
            if not found:
                raise KeyError(policy_name)
            policy_id, version = found[0]
            assert version.record is not None
            props = {k: version.record[k] for k in POLICY_PROPERTIES if k in version.record}
            if ppl is not None:
                props["ppl"] = parse_console_ppl(ppl)
            props.update(fields)
            try:
                checked = self._properties(props)
            except SimError as exc:
                raise ValueError("; ".join([exc.message, *exc.details])) from None
            return self._update(policy_id, checked, console_user(by_email or "admin@example.com"))

    def hand_create(self, name: str, ppl: object, by_email: str) -> dict[str, Any]:
        """A policy created in the console by a human (not counted in write_count)."""
        with self.lock:
            self._advance()
            body = {
                "name": name,
                "description": "",
                "explanation": "",
                "remediation": "",
                "enforced": False,
                "namespaceId": self.namespace_id,
                "ppl": parse_console_ppl(ppl),
            }
            try:
                props = self._properties(body)
                self._check_unique(name, self.namespace_id, None)
            except SimError as exc:
                raise ValueError("; ".join([exc.message, *exc.details])) from None
            now = timestamp(self._now())
            policy_id = str(uuid.uuid4())
            record = {"id": policy_id, **props, "createdAt": now, "updatedAt": now}
            self._commit(policy_id, record, "create", console_user(by_email))
            return self._view(record)

    # ------------------------------------------------------------ changesets

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

    def list_changesets(
        self,
        cluster_id: str | None = None,
        status: str | None = None,
        *,
        limit: int | None = None,
        offset: int = 0,
        order_by: str | None = None,
    ) -> list[dict[str, Any]]:
        """One page of changesets (newest first unless ``order_by``), as the API shows them."""
        with self.lock:
            self._advance()
            if cluster_id not in (None, self.cluster_id):
                raise SimError(404, f"cluster {cluster_id} not found")
            newest_first = sorted(self.changesets.values(), key=lambda c: c.created_at)[::-1]
            views = [self._changeset_view(c) for c in newest_first]
            if status is not None:
                views = [v for v in views if v["status"] == status]
            if order_by:
                views = order(views, order_by, CHANGESET_ORDER)
            return self._page(views, limit, offset)

    def get_changeset(self, changeset_id: str) -> dict[str, Any]:
        with self.lock:
            self._advance()
            changeset = self.changesets.get(changeset_id)
            if changeset is None:
                raise SimError(404, f"changeset {changeset_id} not found")
            return self._changeset_view(changeset)

    def pending_changeset(self) -> dict[str, Any] | None:
        """The namespace's pending changeset, if any (a Python helper for tests)."""
        with self.lock:
            self._advance()
            for changeset in self.changesets.values():
                if changeset.namespace_id == self.namespace_id and changeset.status == "pending":
                    return self._changeset_view(changeset)
            return None

    def apply_changeset(
        self, changeset_id: str, user: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """Start applying a pending changeset; answers its status right after the call.

        ``applying`` when ``apply_delay`` > 0 (it finishes later), else ``applied``
        or the configured failure at once. Applying an applying/applied changeset
        again changes nothing; a failed or rejected one is a 409.
        """
        with self.lock:
            self._advance()
            changeset = self.changesets.get(changeset_id)
            if changeset is None:
                raise SimError(404, f"changeset {changeset_id} not found")
            if changeset.status in FAILED:
                raise SimError(409, f"changeset {changeset_id} is {changeset.status}")
            if changeset.status == "pending":
                changeset.outcome = self.apply_failure
                changeset.applier = dict(user or self.api_user)
                if self.apply_delay > 0:
                    changeset.status = "applying"
                    changeset.updated_at = self._now()
                    changeset.due = time.monotonic() + self.apply_delay
                else:
                    self._finish(changeset)
            return self._changeset_view(changeset, relabel=False)

    def fail_changeset(
        self, changeset_id: str, status: str = "failed", message: str = "rejected by the cluster"
    ) -> dict[str, Any]:
        """Make a pending or applying changeset fail now (a console/cluster-side failure)."""
        if status not in FAILED:
            raise ValueError(f"status must be one of {FAILED}")
        with self.lock:
            self._advance()
            changeset = self.changesets.get(changeset_id)
            if changeset is None:
                raise KeyError(changeset_id)
            if changeset.status not in ("pending", "applying"):
                raise ValueError(f"changeset {changeset_id} is already {changeset.status}")
            changeset.outcome = (status, message)
            self._finish(changeset)
            return self._changeset_view(changeset)

    # ------------------------------------------------------ routes and logs

    def add_route(
        self, name: str, from_url: str, policy_ids: Iterable[str], to: Iterable[str] = ()
    ) -> dict[str, Any]:
        with self.lock:
            now = timestamp(self._now())
            route = {
                "id": str(uuid.uuid4()),
                "name": name,
                "from": from_url,
                "to": list(to) or ["http://upstream.internal"],
                "namespaceId": self.namespace_id,
                "policyIds": list(policy_ids),
                "passIdentityHeaders": True,
                "createdAt": now,
                "updatedAt": now,
            }
            self.routes.append(route)
            return self._route_view(route)

    def _route_view(self, route: Mapping[str, Any]) -> dict[str, Any]:
        live = {r["id"]: r for r in self._live() if r["namespaceId"] == route["namespaceId"]}
        view = copy.deepcopy(dict(route))
        view["policies"] = [
            {"id": pid, "name": live[pid]["name"], "updatedAt": live[pid]["updatedAt"]}
            for pid in route["policyIds"]
            if pid in live
        ]
        enforced = [r for r in live.values() if r["enforced"]]
        view["enforcedPolicyIds"] = [r["id"] for r in enforced]
        view["enforcedPolicies"] = [
            {"id": r["id"], "name": r["name"], "updatedAt": r["updatedAt"]} for r in enforced
        ]
        for flag in (
            "allowSpdy",
            "allowWebsockets",
            "enableGoogleCloudServerlessAuthentication",
            "preserveHostHeader",
            "showErrorDetails",
            "tlsSkipVerify",
            "tlsUpstreamAllowRenegotiation",
        ):
            view.setdefault(flag, False)
        return view

    def list_routes(
        self,
        namespace_id: str,
        *,
        limit: int | None = None,
        offset: int = 0,
        order_by: str | None = None,
    ) -> list[dict[str, Any]]:
        with self.lock:
            self._advance()
            views = [self._route_view(r) for r in self.routes if r["namespaceId"] == namespace_id]
            views = order(views, order_by or "id", ROUTE_ORDER)
            return self._page(views, limit, offset)

    def activity_logs(
        self,
        *,
        filters: Mapping[str, str] | None = None,
        limit: int | None = None,
        offset: int = 0,
        order_by: str | None = None,
    ) -> list[dict[str, Any]]:
        """One page of log entries, newest first unless ``order_by``.

        ``filters`` keys: entityType, entityId, namespaceId, changesetId, userId,
        activityType (exact equality).
        """
        getters: dict[str, Callable[[dict[str, Any]], object]] = {
            "entityType": lambda e: e["entity"]["type"],
            "entityId": lambda e: e["entity"]["id"],
            "namespaceId": lambda e: e["namespace"].get("id"),
            "changesetId": lambda e: e["applied"].get("changesetId"),
            "userId": lambda e: e["user"].get("id"),
            "activityType": lambda e: e["activityType"],
        }
        with self.lock:
            self._advance()
            entries = self.activity[::-1]
            for key, value in (filters or {}).items():
                entries = [e for e in entries if getters[key](e) == value]
            if order_by:
                entries = order(entries, order_by, ACTIVITY_ORDER)
            return copy.deepcopy(self._page(entries, limit, offset))

    # --------------------------------------------------------- the "proxy"

    def effective_policy(self, name_or_id: str) -> dict[str, Any] | None:
        """The applied version of a policy, with ``appliedAt``; None if none is live."""
        with self.lock:
            self._advance()
            found = self._find(name_or_id, effective=True)
            if not found:
                return None
            _, version = found[0]
            assert version.record is not None
            assert version.applied_at is not None
            return {**copy.deepcopy(version.record), "appliedAt": timestamp(version.applied_at)}

    def evaluate(self, name_or_id: str, request: sim_ppl.Request) -> bool:
        """Decide with the effective PPL.

        KeyError if no applied, live policy has that name or id; ValueError if
        several applied policies share the name (ask by id).
        """
        with self.lock:
            self._advance()
            found = self._find(name_or_id, effective=True)
            if not found:
                raise KeyError(name_or_id)
            if len(found) > 1:
                raise ValueError(f"{len(found)} applied policies are named {name_or_id!r}")
            record = found[0][1].record
            assert record is not None
            ppl = copy.deepcopy(record["ppl"])
        return sim_ppl.evaluate(ppl, request)

    def history(self, name_or_id: str) -> list[dict[str, Any]]:
        """Every version of a policy: ppl, changeset, when written and when applied."""
        with self.lock:
            self._advance()
            found = self._find(name_or_id, effective=False) or self._find(
                name_or_id, effective=True
            )
            if not found:
                return []
            policy_id, _ = found[0]
            return [
                {
                    "ppl": copy.deepcopy(v.record["ppl"]) if v.record else None,
                    "deleted": v.record is None,
                    "changesetId": v.changeset_id,
                    "createdAt": v.created_at,
                    "appliedAt": v.applied_at,
                }
                for v in self.versions[policy_id]
            ]

    def dump(self) -> dict[str, Any]:
        """Everything, for ``GET /_sim/state`` and the demo."""
        with self.lock:
            self._advance()
            policies = []
            for policy_id in self.versions:
                latest = self._latest(policy_id)
                effective = self._effective_version(policy_id)
                eff_record = effective.record if effective else None
                if latest is None and eff_record is None:
                    continue
                policies.append(
                    {
                        "id": policy_id,
                        "name": (latest or eff_record or {}).get("name"),
                        "ppl": copy.deepcopy(latest["ppl"]) if latest else None,
                        "effectivePpl": copy.deepcopy(eff_record["ppl"]) if eff_record else None,
                        "appliedAt": timestamp(effective.applied_at)
                        if effective and effective.applied_at
                        else None,
                        "pending": self.versions[policy_id][-1].applied_at is None,
                    }
                )
            return {
                "organizationId": self.organization_id,
                "clusterId": self.cluster_id,
                "namespaceId": self.namespace_id,
                "autoApplyChangesets": self.auto_apply,
                "writeCount": self.write_count,
                "policies": policies,
                "routes": [self._route_view(r) for r in self.routes],
                "changesets": [self._changeset_view(c) for c in self.changesets.values()],
            }
