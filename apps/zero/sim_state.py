"""In-memory model behind the Zero simulator: policies, versions, changesets, logs.

No HTTP here: ``sim_handler`` maps requests onto these methods and
``simulator.ZeroSimulator`` owns the instance. Every public method takes the
state lock, so the model is safe under the threading HTTP server.

Two views of a policy exist, as in a cluster that does not auto-apply:

* the *latest* version is what the API returns (GET/list show pending edits,
  because the Zero console shows the edited policy before it is deployed);
* the *effective* version is the newest one that has been applied, and is
  what the evaluator (the "proxy") enforces.

With ``auto_apply`` on (the default) every write is applied at once and both
views agree. With it off, each write opens its own pending changeset.
"""

from __future__ import annotations

import copy
import json
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from apps.zero import ppl as ppl_lib

POLICY_PROPERTIES = (
    "name",
    "description",
    "explanation",
    "remediation",
    "enforced",
    "namespaceId",
    "ppl",
)
_TEXT_PROPERTIES = ("description", "explanation", "remediation")
_REMOVABLE = {"description": "", "explanation": "", "remediation": "", "enforced": False}
API_USER = {"id": "api-user-sim", "email": "api@sim", "displayName": "API user"}


class SimError(Exception):
    """An API error: becomes ``{"error": message, "details": [...]}`` with ``status``."""

    def __init__(self, status: int, message: str, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details or []


def timestamp(dt: datetime) -> str:
    """RFC 3339 UTC with milliseconds, as the Zero API shows them."""
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_ppl_text(text: str) -> object:
    """Parse PPL text as JSON, else YAML; SimError(400) when it is neither or invalid."""
    try:
        parsed: object = json.loads(text)
    except ValueError:
        parsed = None
        try:
            import yaml

            loaded = yaml.safe_load(text)
            if isinstance(loaded, list | dict):
                parsed = loaded
        except ImportError:  # pragma: no cover - PyYAML is a project dependency
            pass
        except yaml.YAMLError:
            pass
        if parsed is None:
            raise SimError(400, "ppl is neither JSON nor YAML PPL") from None
    errors = ppl_lib.validate_ppl(parsed)
    if errors:
        raise SimError(400, "invalid PPL: " + "; ".join(errors[:5]), errors)
    return parsed


@dataclass
class PolicyVersion:
    """One write to a policy. ``record`` is None for a deletion."""

    record: dict[str, Any] | None
    created_at: datetime
    changeset_id: str | None = None
    applied_at: datetime | None = None
    activity: dict[str, Any] = field(default_factory=dict)


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
    ) -> None:
        self.organization_id = organization_id
        self.cluster_id = cluster_id
        self.namespace_id = namespace_id
        self.auto_apply = auto_apply
        self.clock = clock or (lambda: datetime.now(UTC))
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        """Drop policies, routes, changesets and logs; zero the write counter."""
        with self.lock:
            self.versions: dict[str, list[PolicyVersion]] = {}
            self.changesets: dict[str, dict[str, Any]] = {}
            self.activity: list[dict[str, Any]] = []
            self.routes: list[dict[str, Any]] = []
            self.write_count = 0

    # ----------------------------------------------------------------- views

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
            if record["id"] in r["policyIds"]
        ]
        view["routes"] = refs
        view["enforcedRoutes"] = (
            [{"id": r["id"], "name": r["name"], "updatedAt": r["updatedAt"]} for r in self.routes]
            if record.get("enforced")
            else []
        )
        return view

    def _find(self, name_or_id: str, *, effective: bool) -> tuple[str, PolicyVersion] | None:
        candidates = []
        for pid, versions in self.versions.items():
            version = self._effective_version(pid) if effective else versions[-1]
            if version is None or version.record is None:
                continue
            if name_or_id in (pid, version.record["name"]):
                candidates.append((pid, version))
        return candidates[0] if candidates else None

    # -------------------------------------------------------------- commits

    def _commit(
        self,
        policy_id: str,
        record: dict[str, Any] | None,
        activity_type: str,
        user: Mapping[str, str],
    ) -> PolicyVersion:
        now = self.clock()
        version = PolicyVersion(record=record, created_at=now)
        if self.auto_apply:
            version.applied_at = now
        else:
            changeset_id = str(uuid.uuid4())
            version.changeset_id = changeset_id
            self.changesets[changeset_id] = {
                "id": changeset_id,
                "namespaceId": self.namespace_id,
                "clusterId": self.cluster_id,
                "status": "pending",
                "createdAt": timestamp(now),
                "updatedAt": timestamp(now),
                "changes": [{"entityType": "policy", "entityId": policy_id, "op": activity_type}],
            }
        version.activity = {
            "id": str(uuid.uuid4()),
            "activityType": activity_type,
            "createdAt": timestamp(now),
            "updatedAt": timestamp(now),
            "entity": {"id": policy_id, "type": "policy", "data": copy.deepcopy(record)},
            "user": dict(user),
            "applied": {
                "at": timestamp(now) if version.applied_at else None,
                "by": user.get("email"),
                "changesetId": version.changeset_id,
            },
        }
        self.activity.append(version.activity)
        self.versions.setdefault(policy_id, []).append(version)
        return version

    def _properties(self, body: object, *, require_all: bool) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise SimError(400, "request body must be a JSON object of policy properties")
        required = POLICY_PROPERTIES if require_all else ("name", "namespaceId", "ppl")
        missing = [key for key in required if key not in body]
        if missing:
            raise SimError(400, "missing policy properties: " + ", ".join(missing))
        props = {key: body.get(key, _REMOVABLE.get(key)) for key in POLICY_PROPERTIES}
        errors = []
        if not isinstance(props["name"], str) or not props["name"].strip():
            errors.append("name must be a non-empty string")
        errors.extend(
            f"{k} must be a string" for k in _TEXT_PROPERTIES if not isinstance(props[k], str)
        )
        if not isinstance(props["enforced"], bool):
            errors.append("enforced must be a boolean")
        if props["namespaceId"] != self.namespace_id:
            errors.append(f"unknown namespaceId {props['namespaceId']!r}")
        if not isinstance(props["ppl"], str):
            errors.append("ppl must be a string holding PPL (JSON or YAML)")
        if errors:
            raise SimError(400, "; ".join(errors), errors)
        parse_ppl_text(props["ppl"])
        return props

    def _check_unique(self, name: str, policy_id: str | None) -> None:
        for record in self._live():
            if record["name"] == name and record["id"] != policy_id:
                raise SimError(409, f"a policy named {name!r} already exists in this namespace")

    # ------------------------------------------------------------- policies

    def list_policies(
        self,
        namespace_id: str,
        *,
        limit: int | None = None,
        offset: int = 0,
        order_by: str | None = None,
        filters: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        with self.lock:
            records = [r for r in self._live() if r["namespaceId"] == namespace_id]
            # Only simple {"field": scalar} equality is understood; the real
            # filter syntax is not documented.
            for key, value in (filters or {}).items():
                if not isinstance(value, dict | list):
                    records = [r for r in records if r.get(key) == value]
            # Stable sorts from the last key to the first give a multi-key order.
            for term in reversed([t.strip() for t in (order_by or "").split(",") if t.strip()]):
                field_name = term.lstrip("-+")
                records.sort(
                    key=lambda r: str(r.get(field_name, "")),
                    reverse=term.startswith("-"),
                )
            end = None if limit is None else offset + limit
            return [self._view(r) for r in records[offset:end]]

    def get_policy(self, policy_id: str) -> dict[str, Any]:
        with self.lock:
            record = self._latest(policy_id)
            if record is None:
                raise SimError(404, f"policy {policy_id} not found")
            return self._view(record)

    def create_policy(self, body: object, user: Mapping[str, str] = API_USER) -> dict[str, Any]:
        with self.lock:
            props = self._properties(body, require_all=False)
            self._check_unique(props["name"], None)
            now = timestamp(self.clock())
            policy_id = str(uuid.uuid4())
            record = {"id": policy_id, **props, "createdAt": now, "updatedAt": now}
            self._commit(policy_id, record, "create", user)
            self.write_count += 1
            return self._view(record)

    def _update(self, policy_id: str, props: dict[str, Any], user: Mapping[str, str]) -> dict:
        current = self._latest(policy_id)
        assert current is not None
        self._check_unique(props.get("name", current["name"]), policy_id)
        record = {**current, **props, "updatedAt": timestamp(self.clock())}
        self._commit(policy_id, record, "update", user)
        return self._view(record)

    def replace_policy(self, policy_id: str, body: object) -> dict[str, Any]:
        with self.lock:
            self.get_policy(policy_id)  # 404 first, as a real API would
            view = self._update(policy_id, self._properties(body, require_all=True), API_USER)
            self.write_count += 1
            return view

    def patch_policy(self, policy_id: str, operations: object) -> dict[str, Any]:
        """Minimal RFC 6902: add/replace/remove on top-level property paths."""
        with self.lock:
            current = self.get_policy(policy_id)
            if not isinstance(operations, list) or not operations:
                raise SimError(400, "body must be a non-empty JSON Patch array")
            props = {key: current[key] for key in POLICY_PROPERTIES}
            for i, op in enumerate(operations):
                if not isinstance(op, dict) or op.get("op") not in ("add", "replace", "remove"):
                    raise SimError(
                        400, f"operation {i}: only add, replace and remove are supported"
                    )
                path = op.get("path")
                key = path[1:] if isinstance(path, str) and path.startswith("/") else None
                if key not in POLICY_PROPERTIES:
                    raise SimError(400, f"operation {i}: unsupported path {path!r}")
                if op["op"] == "remove":
                    if key not in _REMOVABLE:
                        raise SimError(400, f"operation {i}: {key} cannot be removed")
                    props[key] = _REMOVABLE[key]
                elif "value" not in op:
                    raise SimError(400, f"operation {i}: {op['op']} needs a value")
                else:
                    props[key] = op["value"]
            view = self._update(policy_id, self._properties(props, require_all=True), API_USER)
            self.write_count += 1
            return view

    def delete_policy(self, policy_id: str) -> None:
        with self.lock:
            self.get_policy(policy_id)
            self._commit(policy_id, None, "delete", API_USER)
            self.write_count += 1

    def hand_edit(self, policy_name: str, ppl: object, by_email: str) -> dict[str, Any]:
        """A console edit: new PPL by a human, logged, not counted in write_count.

        Not validated (the point is to simulate whatever someone typed);
        goes through changesets like any other edit.
        """
        with self.lock:
            found = self._find(policy_name, effective=False)
            if found is None:
                raise KeyError(policy_name)
            policy_id, _ = found
            text = ppl if isinstance(ppl, str) else ppl_lib.dumps(ppl)
            user = {"id": "user-" + by_email, "email": by_email, "displayName": by_email}
            return self._update(policy_id, {"ppl": text}, user)

    # ------------------------------------------------------------ changesets

    def list_changesets(self, cluster_id: str | None, status: str | None) -> list[dict]:
        with self.lock:
            if cluster_id not in (None, self.cluster_id):
                return []
            return [
                copy.deepcopy(c)
                for c in self.changesets.values()
                if status is None or c["status"] == status
            ]

    def apply_changeset(self, changeset_id: str) -> dict[str, Any]:
        """Apply a pending changeset (idempotent for an applied one)."""
        with self.lock:
            changeset = self.changesets.get(changeset_id)
            if changeset is None:
                raise SimError(404, f"changeset {changeset_id} not found")
            if changeset["status"] == "pending":
                now = self.clock()
                for versions in self.versions.values():
                    for version in versions:
                        if version.changeset_id == changeset_id:
                            version.applied_at = now
                            version.activity["applied"]["at"] = timestamp(now)
                changeset.update(
                    status="applied", appliedAt=timestamp(now), updatedAt=timestamp(now)
                )
            return copy.deepcopy(changeset)

    # ------------------------------------------------------ routes and logs

    def add_route(
        self, name: str, from_url: str, policy_ids: Iterable[str], to: Iterable[str] = ()
    ) -> dict[str, Any]:
        with self.lock:
            route = {
                "id": str(uuid.uuid4()),
                "name": name,
                "from": from_url,
                "to": list(to) or ["http://upstream.internal"],
                "namespaceId": self.namespace_id,
                "policyIds": list(policy_ids),
                "passIdentityHeaders": True,
                "updatedAt": timestamp(self.clock()),
            }
            self.routes.append(route)
            return self._route_view(route)

    def _route_view(self, route: Mapping[str, Any]) -> dict[str, Any]:
        live = {r["id"]: r for r in self._live()}
        view = copy.deepcopy(dict(route))
        view["policies"] = [
            {"id": pid, "name": live[pid]["name"], "updatedAt": live[pid]["updatedAt"]}
            for pid in route["policyIds"]
            if pid in live
        ]
        view["enforcedPolicyIds"] = [pid for pid, r in live.items() if r.get("enforced")]
        return view

    def list_routes(self, namespace_id: str | None) -> list[dict[str, Any]]:
        with self.lock:
            return [
                self._route_view(r)
                for r in self.routes
                if namespace_id is None or r["namespaceId"] == namespace_id
            ]

    def activity_logs(
        self,
        entity_type: str | None,
        entity_id: str | None,
        limit: int | None,
        order_by: str | None,
    ) -> list[dict[str, Any]]:
        with self.lock:
            entries = [
                e
                for e in self.activity
                if (entity_type is None or e["entity"]["type"] == entity_type)
                and (entity_id is None or e["entity"]["id"] == entity_id)
            ]
            if order_by and order_by.startswith("-"):
                entries = entries[::-1]
            return copy.deepcopy(entries[:limit] if limit is not None else entries)

    # --------------------------------------------------------- the "proxy"

    def effective_policy(self, name_or_id: str) -> dict[str, Any] | None:
        """The applied version of a policy, with ``appliedAt``; None if none is live."""
        with self.lock:
            found = self._find(name_or_id, effective=True)
            if found is None:
                return None
            _, version = found
            assert version.record is not None
            assert version.applied_at is not None
            return {**copy.deepcopy(version.record), "appliedAt": timestamp(version.applied_at)}

    def evaluate(
        self, name_or_id: str, email: str, at: datetime, groups: Iterable[str] = ()
    ) -> bool:
        """Decide with the effective PPL; KeyError if no applied, live policy matches."""
        record = self.effective_policy(name_or_id)
        if record is None:
            raise KeyError(name_or_id)
        return ppl_lib.evaluate(record["ppl"], email, at, groups)

    def history(self, name_or_id: str) -> list[dict[str, Any]]:
        """Every version of a policy: ppl, changeset, when written and when applied."""
        with self.lock:
            found = self._find(name_or_id, effective=False) or self._find(
                name_or_id, effective=True
            )
            if found is None:
                return []
            policy_id, _ = found
            return [
                {
                    "ppl": v.record["ppl"] if v.record else None,
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
                        "ppl": ppl_lib.normalize(latest["ppl"]) if latest else None,
                        "effectivePpl": ppl_lib.normalize(eff_record["ppl"])
                        if eff_record
                        else None,
                        "appliedAt": timestamp(effective.applied_at)
                        if effective and effective.applied_at
                        else None,
                        "pending": bool(self.versions[policy_id][-1].applied_at is None),
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
                "changesets": list(self.changesets.values()),
            }
