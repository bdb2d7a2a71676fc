"""The Core stand-in's records: policies and routes in memory, as Core's databroker keeps them.

Read from ``internal/databroker/server_backend_config.go`` (v0.33):

* Create: an id given in the body is kept (``already_exists`` if taken), else a UUID;
  ``createdAt`` is set by the server, ``modifiedAt`` is the record's write time.
* Get/Update of an unknown id: ``not_found`` (``Policy not found (id=...)``). An empty id:
  ``invalid_argument``.
* Update is last-write-wins: read, apply ``updateMask`` if given, validate, write. Without a
  mask the body replaces the record (fields left out are cleared). A mask that touches
  ``id``, ``createdAt`` or ``modifiedAt`` is refused (read-only).
* Delete of an unknown id succeeds (nothing to do). ``removeFromAnyAssignedRoutes`` is
  accepted and, as in Core, does nothing: a route keeps the id, and the proxy (and the
  evaluator) skip ids that name no policy.
* List: every record (creation order, or ``orderBy``), ``totalCount`` of all, then
  ``offset``, then ``limit`` - and then the stand-in's page cap, which Core does not have
  (clients must not assume ``limit`` is honoured).

Every method takes the lock; values handed out are deep copies.
"""

from __future__ import annotations

import copy
import threading
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from apps.pomerium import configservice_contract as contract
from devtools.coresim.ppl import PPLError, Request, Rule, compile_ppl, evaluate_rules

__all__ = ["CoreError", "Store", "timestamp"]

POLICY_FIELDS = (
    "id",
    "namespaceId",
    "originatorId",
    "name",
    "description",
    "enforced",
    "allowedUsers",
    "allowedDomains",
    "allowedIdpClaims",
    "rego",
    "sourcePpl",
    "explanation",
    "remediation",
    "createdAt",
    "modifiedAt",
    "enforcedRoutes",
    "assignedRoutes",
    "namespaceName",
)
READ_ONLY = ("createdAt", "modifiedAt", "enforcedRoutes", "assignedRoutes", "namespaceName")
ORDER_FIELDS = {
    "id": "id",
    "name": "name",
    "created_at": "createdAt",
    "createdAt": "createdAt",
    "modified_at": "modifiedAt",
    "modifiedAt": "modifiedAt",
    "from": "from",
}


class CoreError(Exception):
    """A Connect error: ``code`` (``not_found``...) and Pomerium's message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def timestamp(moment: datetime) -> str:
    """protojson's Timestamp: UTC, ``Z``, 0, 3, 6 fraction digits as needed."""
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    micros = moment.microsecond
    if micros:
        text += f".{micros // 1000:03d}" if micros % 1000 == 0 else f".{micros:06d}"
    return text + "Z"


def _camel(path: str) -> str:
    head, *rest = path.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


class Store:
    """Policies and routes of one Core control plane."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self.clock = clock
        self.lock = threading.RLock()
        self.policies: dict[str, dict[str, Any]] = {}
        self.routes: dict[str, dict[str, Any]] = {}
        self.rules: dict[str, list[Rule]] = {}  # policy id -> compiled sourcePpl
        self.page_cap = 10
        self._last = datetime.min.replace(tzinfo=UTC)

    def reset(self) -> None:
        with self.lock:
            self.policies.clear()
            self.routes.clear()
            self.rules.clear()

    # --------------------------------------------------------------- helpers

    def _now(self) -> str:
        """A write time, strictly after the previous one (two writes never share one)."""
        now = self.clock().astimezone(UTC)
        if now <= self._last:
            now = self._last + timedelta(microseconds=1)
        self._last = now
        return timestamp(now)

    @staticmethod
    def _compile(policy: dict[str, Any]) -> list[Rule]:
        """Core's ``validatePolicy``: compile ``sourcePpl`` unless ``rego`` is given."""
        source = policy.get("sourcePpl") or ""
        if policy.get("rego") or not source:
            return []
        try:
            return compile_ppl(source)
        except PPLError as exc:
            raise CoreError("invalid_argument", f"invalid policy: {exc}") from None

    @staticmethod
    def _clean(record: dict[str, Any]) -> dict[str, Any]:
        """Drop nulls and empty lists/maps: proto-JSON leaves out unset fields."""
        return {k: v for k, v in record.items() if v is not None and v != [] and v != {}}

    def _mask(
        self, kind: str, original: dict[str, Any], update: dict[str, Any], mask: str
    ) -> dict[str, Any]:
        merged = copy.deepcopy(original)
        for raw in (p.strip() for p in mask.split(",")):
            if not raw:
                continue
            path = _camel(raw)
            if "." in path or path not in FIELDS_BY_KIND[kind]:
                raise CoreError("invalid_argument", f"invalid field mask path: {raw}")
            if path in ("id", "createdAt", "modifiedAt"):
                snake = {"id": "id", "createdAt": "created_at", "modifiedAt": "modified_at"}[path]
                raise CoreError("invalid_argument", f"{snake} is a read-only property")
            if path in update:
                merged[path] = copy.deepcopy(update[path])
            else:
                merged.pop(path, None)
        return merged

    # -------------------------------------------------------------- policies

    def create_policy(self, policy: dict[str, Any] | None) -> dict[str, Any]:
        if policy is None:
            raise CoreError("invalid_argument", "policy is required")
        entity = {k: copy.deepcopy(v) for k, v in policy.items() if k not in READ_ONLY}
        rules = self._compile(entity)
        with self.lock:
            policy_id = entity.get("id")
            if policy_id:
                if policy_id in self.policies:
                    raise CoreError("already_exists", f"Policy already exists (id={policy_id})")
            else:
                policy_id = str(uuid.uuid4())
            entity["id"] = policy_id
            now = self._now()
            entity["createdAt"] = now
            entity["modifiedAt"] = now
            entity = self._clean(entity)
            self.policies[policy_id] = entity
            self.rules[policy_id] = rules
            return copy.deepcopy(entity)

    def get_policy(self, policy_id: str) -> dict[str, Any]:
        if not policy_id:
            raise CoreError("invalid_argument", "id is required")
        with self.lock:
            found = self.policies.get(policy_id)
            if found is None:
                raise CoreError("not_found", f"Policy not found (id={policy_id}): not found")
            return copy.deepcopy(found)

    def update_policy(self, policy: dict[str, Any] | None, mask: str | None) -> dict[str, Any]:
        if policy is None:
            raise CoreError("invalid_argument", "policy is required")
        policy_id = policy.get("id") or ""
        if not policy_id:
            raise CoreError("invalid_argument", "policy id is required")
        with self.lock:
            original = self.get_policy(policy_id)
            if mask is None:
                entity = {k: copy.deepcopy(v) for k, v in policy.items() if k not in READ_ONLY}
            else:
                entity = self._mask("Policy", original, policy, mask)
            rules = self._compile(entity)
            entity["id"] = policy_id
            entity["createdAt"] = original["createdAt"]
            entity["modifiedAt"] = self._now()
            entity = self._clean(entity)
            self.policies[policy_id] = entity
            self.rules[policy_id] = rules
            return copy.deepcopy(entity)

    def delete_policy(self, policy_id: str) -> None:
        if not policy_id:
            raise CoreError("invalid_argument", "policy id is required")
        with self.lock:
            self.policies.pop(policy_id, None)
            self.rules.pop(policy_id, None)

    def hand_edit(self, policy_id: str, **fields: Any) -> dict[str, Any]:
        """Someone edits the policy by hand (another admin, Terraform...): the fields given
        replace the stored ones, ``modifiedAt`` moves. KeyError / ValueError."""
        with self.lock:
            if policy_id not in self.policies:
                raise KeyError(policy_id)
            entity = copy.deepcopy(self.policies[policy_id])
            for key, value in fields.items():
                if key not in POLICY_FIELDS or key in ("id", *READ_ONLY):
                    raise ValueError(f"{key} is not an editable policy field")
                entity[key] = value
            problems = contract.errors("Policy", self._clean(entity))
            if problems:
                raise ValueError("; ".join(problems))
            try:
                rules = self._compile(entity)
            except CoreError as exc:
                raise ValueError(exc.message) from None
            entity["modifiedAt"] = self._now()
            entity = self._clean(entity)
            self.policies[policy_id] = entity
            self.rules[policy_id] = rules
            return copy.deepcopy(entity)

    # ---------------------------------------------------------------- routes

    def add_route(self, route: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            route_id = route.get("id") or str(uuid.uuid4())
            if route_id in self.routes:
                raise ValueError(f"route {route_id} exists already")
            now = self._now()
            entity = {**copy.deepcopy(route), "id": route_id, "createdAt": now, "modifiedAt": now}
            problems = contract.errors("Route", self._clean(entity))
            if problems:
                raise ValueError("; ".join(problems))
            self.routes[route_id] = self._clean(entity)
            return copy.deepcopy(self.routes[route_id])

    def get_route(self, route_id: str) -> dict[str, Any]:
        if not route_id:
            raise CoreError("invalid_argument", "id is required")
        with self.lock:
            found = self.routes.get(route_id)
            if found is None:
                raise CoreError("not_found", f"Route not found (id={route_id}): not found")
            return copy.deepcopy(found)

    def update_route(self, route: dict[str, Any] | None, mask: str | None) -> dict[str, Any]:
        if route is None:
            raise CoreError("invalid_argument", "route is required")
        route_id = route.get("id") or ""
        if not route_id:
            raise CoreError("invalid_argument", "route id is required")
        with self.lock:
            original = self.get_route(route_id)
            if mask is None:
                entity = {k: copy.deepcopy(v) for k, v in route.items() if k not in READ_ONLY}
            else:
                entity = self._mask("Route", original, route, mask)
            if not entity.get("from"):
                raise CoreError("invalid_argument", "invalid route: missing from")
            entity["id"] = route_id
            entity["createdAt"] = original["createdAt"]
            entity["modifiedAt"] = self._now()
            entity = self._clean(entity)
            self.routes[route_id] = entity
            return copy.deepcopy(entity)

    # ----------------------------------------------------------------- lists

    def page(
        self,
        kind: str,
        offset: int | None,
        limit: int | None,
        order_by: str | None,
        filter_: dict[str, Any] | None,
    ) -> tuple[list[dict[str, Any]], int]:
        with self.lock:
            records = list((self.policies if kind == "policies" else self.routes).values())
            records = [copy.deepcopy(r) for r in records]
        if filter_:
            records = _filtered(records, filter_)
        if order_by:
            records = _ordered(records, order_by)
        total = len(records)
        if offset is not None:
            records = records[offset:]
        if limit is not None:
            records = records[:limit]
        return records[: self.page_cap], total

    # ------------------------------------------------------------ evaluation

    def routes_listing(self, policy_id: str) -> list[str]:
        with self.lock:
            return [rid for rid, r in self.routes.items() if policy_id in r.get("policyIds", [])]

    def policy_verdict(self, policy_id: str, request: Request) -> tuple[bool, bool]:
        """(allows, denies) for one stored policy: its ``sourcePpl`` plus the
        ``allowedUsers`` / ``allowedDomains`` / ``allowedIdpClaims`` shortcuts (as Core's
        ``config/policy_ppl.go`` turns them into allow criteria). Rego is not evaluated."""
        with self.lock:
            policy = copy.deepcopy(self.policies[policy_id])
            rules = copy.deepcopy(self.rules.get(policy_id, []))
        extra: list[dict[str, Any]] = []
        for user in policy.get("allowedUsers", []):
            extra += [{"user": {"is": user}}, {"email": {"is": user}}]
        for domain in policy.get("allowedDomains", []):
            extra.append({"domain": {"is": domain}})
        for claim, values in sorted(policy.get("allowedIdpClaims", {}).items()):
            extra += [{f"claim/{claim}": value} for value in values]
        if extra:
            rules = [*rules, {"allow": {"or": extra}}]
        return evaluate_rules(rules, request)

    def route_allows(self, route_id: str, request: Request) -> bool:
        """Core's authorize: some attached policy allows and none denies (ids naming no
        policy are skipped); ``allowPublicUnauthenticatedAccess`` lets everyone in,
        ``allowAnyAuthenticatedUser`` every signed-in user."""
        with self.lock:
            route = copy.deepcopy(self.routes[route_id])
            ids = [pid for pid in route.get("policyIds", []) if pid in self.policies]
        if route.get("allowPublicUnauthenticatedAccess"):
            return True
        allowed = bool(route.get("allowAnyAuthenticatedUser")) and bool(
            request.email or request.user
        )
        denied = False
        for policy_id in ids:
            allows, denies = self.policy_verdict(policy_id, request)
            allowed = allowed or allows
            denied = denied or denies
        return allowed and not denied


FIELDS_BY_KIND: dict[str, Iterable[str]] = {
    "Policy": POLICY_FIELDS,
    "Route": (
        "id",
        "namespaceId",
        "name",
        "description",
        "from",
        "to",
        "prefix",
        "path",
        "allowPublicUnauthenticatedAccess",
        "allowAnyAuthenticatedUser",
        "policyIds",
        "showErrorDetails",
        "createdAt",
        "modifiedAt",
        "namespaceName",
    ),
}


def _filtered(records: list[dict[str, Any]], filter_: dict[str, Any]) -> list[dict[str, Any]]:
    """Equality on top-level string fields (``{"name": "x"}``); other shapes are refused."""
    wanted: dict[str, str] = {}
    for key, value in filter_.items():
        field = _camel(key)
        if not isinstance(value, str) or key.startswith("$"):
            raise CoreError(
                "invalid_argument", "invalid filter expression: the stand-in models equality only"
            )
        wanted[field] = value
    return [r for r in records if all(r.get(k) == v for k, v in wanted.items())]


def _ordered(records: list[dict[str, Any]], order_by: str) -> list[dict[str, Any]]:
    keys: list[tuple[str, bool]] = []
    for part in order_by.split(","):
        words = part.split()
        if not words:
            continue
        field = ORDER_FIELDS.get(words[0])
        direction = words[1].lower() if len(words) > 1 else "asc"
        if field is None or direction not in ("asc", "desc") or len(words) > 2:
            raise CoreError("invalid_argument", f"invalid order by {words[0]}")
        keys.append((field, direction == "desc"))
    for field, descending in reversed(keys):

        def key(record: dict[str, Any], field: str = field) -> str:
            return str(record.get(field) or "")

        records.sort(key=key, reverse=descending)
    return records
