"""A tiny in-process Pomerium Core for unit tests of the ConfigService adapter and the sync.

Written from Pomerium's OpenAPI document for ``pomerium.config.ConfigService`` and
docs/pomerium-config-api.md, not from our client: Connect JSON over ``responses``; every
call needs ``Connect-Protocol-Version: 1`` and a ``jwt`` header (HS256, exactly one
claim ``exp``, signed with the base64-decoded shared secret); request messages are closed
(an unknown field is ``invalid_argument``); ``sourcePpl`` is a string and a criterion Core
does not register is ``invalid_argument: unknown policy criterion: <name>``; lists page
with ``offset``/``limit`` under a page cap and answer ``totalCount`` as a string. The real
stand-in (devtools/coresim) replaces it in the integration tests.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import jwt
import responses

SERVICE = "/pomerium.config.ConfigService/"
POLICY_FIELDS = {
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
}
REQUESTS = {
    "GetServerInfo": set(),
    "ListPolicies": {"offset", "limit", "filter", "orderBy"},
    "GetPolicy": {"id"},
    "CreatePolicy": {"policy"},
    "UpdatePolicy": {"policy", "updateMask"},
    "DeletePolicy": {"id", "removeFromAnyAssignedRoutes"},
    "ListRoutes": {"offset", "limit", "filter", "orderBy"},
    "GetRoute": {"id"},
    "UpdateRoute": {"route", "updateMask"},
}
# Pomerium Core's registered criteria (pkg/policy/criteria, v0.33): no date, no schedules.
CORE_CRITERIA = {
    "accept",
    "authenticated_user",
    "claim",
    "client_certificate",
    "cors_preflight",
    "device",
    "domain",
    "email",
    "groups",
    "http_method",
    "http_path",
    "invalid_client_certificate",
    "mcp_tool",
    "reject",
    "source_ip",
    "ssh_publickey",
    "ssh_ca",
    "ssh_username",
    "ssh_username_matches_email",
    "ssh_username_matches_claim",
    "user",
}
ACTIONS = {"allow", "deny"}
OPERATORS = {"and", "or", "not", "nor"}


class ConnectError(Exception):
    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def _criteria(rules: Any) -> list[str]:
    names: list[str] = []
    for rule in rules if isinstance(rules, list) else [rules]:
        for action, body in (rule or {}).items():
            for items in (body or {}).values():
                for item in items or []:
                    for name in item:
                        if name in OPERATORS:
                            names += _criteria([{action: {name: item[name]}}])
                        else:
                            names.append(name.split("/")[0])
    return names


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class FakeCore:
    def __init__(self, url: str = "http://core.test:5443", page_cap: int = 10) -> None:
        self.url = url
        self.shared_secret = base64.b64encode(b"fake-core-shared-secret-32-bytes").decode()
        self.page_cap = page_cap
        self.policies: dict[str, dict[str, Any]] = {}
        self.routes: dict[str, dict[str, Any]] = {}
        self.calls: Counter[str] = Counter()
        self.bodies: list[tuple[str, dict[str, Any]]] = []
        self.faults: list[tuple[str, str, str]] = []  # (method, code, message), once each
        self._ids = itertools.count(1)

    # Set-up and hand edits ---------------------------------------------------------
    def add_route(self, route_id: str, **fields: Any) -> None:
        self.routes[route_id] = {"id": route_id, "policyIds": [], **fields}

    def add_policy(self, **fields: Any) -> dict[str, Any]:
        policy_id = f"pol-{next(self._ids)}"
        self.policies[policy_id] = {
            "id": policy_id,
            **fields,
            "createdAt": _now(),
            "modifiedAt": _now(),
        }
        return self.policies[policy_id]

    def hand_edit(self, policy_id: str, **fields: Any) -> None:
        self.policies[policy_id].update(fields, modifiedAt=_now())

    def register(self, mock: responses.RequestsMock) -> None:
        mock.add_callback(
            responses.POST, re.compile(re.escape(self.url + SERVICE) + r"\w+"), self._answer
        )

    # The protocol ------------------------------------------------------------------
    def _answer(self, request: Any) -> tuple[int, dict[str, str], str]:
        method = request.url.rsplit("/", 1)[-1]
        self.calls[method] += 1
        try:
            body = self._check(request, method)
            self.bodies.append((method, body))
            for fault in list(self.faults):
                if fault[0] == method:
                    self.faults.remove(fault)
                    raise ConnectError(fault[1], fault[2], 503)
            answer = getattr(self, "_" + method)(body)
        except ConnectError as exc:
            error = {"code": exc.code, "message": exc.message}
            return exc.status, {"Content-Type": "application/json"}, json.dumps(error)
        return 200, {"Content-Type": "application/json"}, json.dumps(answer)

    def _check(self, request: Any, method: str) -> dict[str, Any]:
        if request.headers.get("Connect-Protocol-Version") != "1":
            raise ConnectError("invalid_argument", "missing Connect-Protocol-Version", 400)
        if method not in REQUESTS:
            raise ConnectError("unimplemented", f"{method} is not implemented", 404)
        token = request.headers.get("jwt", "")
        try:
            claims = jwt.decode(token, base64.b64decode(self.shared_secret), algorithms=["HS256"])
        except jwt.PyJWTError:
            raise ConnectError("unauthenticated", "invalid JWT", 401) from None
        if set(claims) != {"exp"}:
            raise ConnectError("unauthenticated", "unexpected JWT claims", 401)
        body = json.loads(request.body or b"{}")
        extra = set(body) - REQUESTS[method]
        if extra:
            raise ConnectError("invalid_argument", f"unknown field {sorted(extra)[0]}", 400)
        return body

    def _compile(self, policy: dict[str, Any]) -> None:
        extra = set(policy) - POLICY_FIELDS
        if extra:
            raise ConnectError("invalid_argument", f"unknown field {sorted(extra)[0]}", 400)
        source = policy.get("sourcePpl")
        if source is None:
            return
        if not isinstance(source, str):
            raise ConnectError("invalid_argument", "sourcePpl: expected a string", 400)
        try:
            rules = json.loads(source)
        except ValueError:
            raise ConnectError("invalid_argument", "sourcePpl: invalid PPL", 400) from None
        for name in _criteria(rules):
            if name not in CORE_CRITERIA:
                raise ConnectError("invalid_argument", f"unknown policy criterion: {name}", 400)

    def _page(self, items: list[dict[str, Any]], body: dict[str, Any], key: str) -> dict[str, Any]:
        offset = int(body.get("offset") or 0)
        limit = min(int(body.get("limit") or self.page_cap), self.page_cap)
        return {key: items[offset : offset + limit], "totalCount": str(len(items))}

    def _GetServerInfo(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"serverType": "SERVER_TYPE_CORE", "version": "v0.33.1"}

    def _ListPolicies(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._page(list(self.policies.values()), body, "policies")

    def _policy(self, policy_id: str) -> dict[str, Any]:
        if policy_id not in self.policies:
            raise ConnectError("not_found", f"policy {policy_id} not found", 404)
        return self.policies[policy_id]

    def _GetPolicy(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"policy": self._policy(str(body.get("id")))}

    def _CreatePolicy(self, body: dict[str, Any]) -> dict[str, Any]:
        policy = dict(body.get("policy") or {})
        self._compile(policy)
        policy.pop("id", None)
        return {"policy": self.add_policy(**policy)}

    def _UpdatePolicy(self, body: dict[str, Any]) -> dict[str, Any]:
        wanted = dict(body.get("policy") or {})
        self._compile(wanted)
        current = self._policy(str(wanted.get("id")))
        mask = [p for p in str(body.get("updateMask") or "").split(",") if p]
        fields = mask or [k for k in wanted if k != "id"]
        for field in fields:
            if field not in POLICY_FIELDS:
                raise ConnectError("invalid_argument", f"invalid update mask path {field}", 400)
            if field in wanted:
                current[field] = wanted[field]
            else:
                current.pop(field, None)
        current["modifiedAt"] = _now()
        return {"policy": current}

    def _DeletePolicy(self, body: dict[str, Any]) -> dict[str, Any]:
        policy_id = str(body.get("id"))
        self._policy(policy_id)
        for route in self.routes.values():
            if policy_id in route["policyIds"]:
                if not body.get("removeFromAnyAssignedRoutes"):
                    raise ConnectError("failed_precondition", "policy is assigned", 400)
                route["policyIds"].remove(policy_id)
        del self.policies[policy_id]
        return {}

    def _ListRoutes(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._page(list(self.routes.values()), body, "routes")

    def _GetRoute(self, body: dict[str, Any]) -> dict[str, Any]:
        route_id = str(body.get("id"))
        if route_id not in self.routes:
            raise ConnectError("not_found", f"route {route_id} not found", 404)
        return {"route": self.routes[route_id]}

    def _UpdateRoute(self, body: dict[str, Any]) -> dict[str, Any]:
        wanted = dict(body.get("route") or {})
        route = self._GetRoute({"id": wanted.get("id")})["route"]
        mask = [p for p in str(body.get("updateMask") or "").split(",") if p]
        for field in mask or [k for k in wanted if k != "id"]:
            route[field] = wanted.get(field)
        return {"route": route}
