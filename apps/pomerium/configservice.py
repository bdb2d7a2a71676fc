"""Pomerium's ConfigService client: Core, Enterprise and Zero through one Connect API.

Contract (docs/sync.md "Pomerium Core and Enterprise"; Pomerium's OpenAPI document for
``pomerium.config.ConfigService``):

* Every call is ``POST {base}/pomerium.config.ConfigService/<Method>`` with a JSON body,
  ``Content-Type: application/json`` and ``Connect-Protocol-Version: 1``. Success is 200
  with the response message; a failure is a non-200 with a Connect error body
  ``{"code", "message"}``.
* Errors: ``unavailable``, ``deadline_exceeded``, ``resource_exhausted``, ``aborted``,
  ``internal``, ``unknown`` (and network failures, timeouts, a 5xx without a Connect body)
  raise ``ZeroTransientError``; every other code raises ``ZeroPermanentError`` whose
  message keeps the server's (``invalid_argument: unknown policy criterion: date``).
  ``status`` is the HTTP status Connect pairs with the code (404 for ``not_found``, 400
  for ``invalid_argument``), so the sync reads both adapters' errors alike.
* Authentication: on Core a fresh HS256 JWT per call, with exactly one claim, ``exp``,
  ``JWT_LIFETIME`` seconds ahead, signed with the base64-decoded shared secret, in the
  ``jwt`` header; on Zero or Enterprise (flavour ``api``) ``Authorization: Bearer <token>``.
  Neither the secret, nor a JWT, nor the token ever appears in a message or a log line.
* Policies are read and written as the sync compares them (``apps.pomerium.desired``): the
  wire's ``sourcePpl`` is a *string* of PPL (written as ``ppl.dumps`` of the rules); read
  back it is parsed into ``ppl`` (JSON, else YAML; text that is neither is kept as text, so
  it never equals what the portal wants and is rewritten).
* Lists page with ``offset``/``limit`` and ``totalCount``; the server need not honour
  ``limit``, so paging goes on by what came back until ``totalCount`` items are read or a
  page is empty.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import jwt
import requests
import yaml

from apps import ppl as ppl_lib
from apps.access import pomerium_targets
from apps.pomerium.transport import (
    ZeroError,
    ZeroPermanentError,
    ZeroTransientError,
    _parse_retry_after,
)

__all__ = [
    "JWT_LIFETIME",
    "LOCATION_PREFIX",
    "SERVICE",
    "TRANSIENT_CODES",
    "ConfigServiceClient",
    "core_jwt",
    "policy_from_wire",
]

logger = logging.getLogger("apps.pomerium.configservice")

SERVICE = "pomerium.config.ConfigService"
LOCATION_PREFIX = "target:"
JWT_LIFETIME = 300  # seconds: "a few minutes ahead"
PAGE_SIZE = 100  # asked for; the server may send fewer
MAX_PAGES = 1000  # a server that ignores offset must not keep us looping
BODY_EXCERPT = 300
REDACTED = "[REDACTED]"
TRANSIENT_CODES = frozenset(
    {"unavailable", "deadline_exceeded", "resource_exhausted", "aborted", "internal", "unknown"}
)
# Connect's pairing of codes with HTTP statuses (connectrpc.com/docs/protocol, "Error codes").
CODE_STATUS = {
    "canceled": 499,
    "unknown": 500,
    "invalid_argument": 400,
    "deadline_exceeded": 504,
    "not_found": 404,
    "already_exists": 409,
    "permission_denied": 403,
    "resource_exhausted": 429,
    "failed_precondition": 400,
    "aborted": 409,
    "out_of_range": 400,
    "unimplemented": 501,
    "internal": 500,
    "unavailable": 503,
    "data_loss": 500,
    "unauthenticated": 401,
}
# What the portal owns in a policy; an update names exactly these, nothing else changes.
POLICY_MASK = ("name", "description", "explanation", "remediation", "sourcePpl")


def core_jwt(secret: bytes, now: float | None = None) -> str:
    """A Core API token: HS256, signed with the decoded shared secret, ONLY ``exp``."""
    exp = int(now if now is not None else time.time()) + JWT_LIFETIME
    return jwt.encode({"exp": exp}, secret, algorithm="HS256")


def _parse_source(text: object) -> object:
    """``sourcePpl`` as a structure: JSON, else YAML; anything else stays as it is."""
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        parsed = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return parsed if isinstance(parsed, list | dict) else text


def policy_from_wire(policy: object) -> dict[str, Any]:
    """A ConfigService Policy as the sync reads policies: ``ppl`` a structure, ``routes``
    the routes it is assigned to, the text fields as they came."""
    if not isinstance(policy, dict):
        raise ZeroPermanentError(f"expected a policy object, got {type(policy).__name__}")
    found = dict(policy)
    found["ppl"] = _parse_source(policy.get("sourcePpl"))
    found["enforced"] = bool(policy.get("enforced"))
    assigned = policy.get("assignedRoutes")
    if isinstance(assigned, list):
        found["routes"] = [
            r if isinstance(r, dict) else {"id": r, "name": None}
            for r in assigned
            if isinstance(r, dict | str)
        ]
    return found


def _count(value: object) -> int | None:
    """``totalCount``: an int64, which proto-JSON may send as a string."""
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


class ConfigServiceClient:
    """A ConfigService client for one target (a Core, or Zero/Enterprise's API).

    Thread-safe (no state but counters). ``calls`` counts requests by
    (``"POST"``, method name), e.g. ``calls[("POST", "ListPolicies")]``.
    """

    def __init__(
        self,
        base_url: str,
        *,
        target: str = "",
        shared_secret: str = "",
        api_token: str = "",
        timeout: float = 10.0,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if bool(shared_secret) == bool(api_token):
            raise ValueError("a ConfigService client needs a shared secret or an API token")
        self.base_url = base_url.rstrip("/")
        self.target = target
        # Where the policies live, as PolicySync.cluster_id remembers it (moves): the target's
        # name, so a Core that changes address is not taken for a move.
        self.cluster_id = f"{LOCATION_PREFIX}{target}" if target else self.base_url
        self._secret = pomerium_targets.decode_secret(shared_secret) if shared_secret else b""
        self._secret_text = shared_secret
        self._api_token = api_token
        self.timeout = timeout
        self.session = session or requests.Session()
        self.clock = clock
        self.calls: Counter[tuple[str, str]] = Counter()
        # Set by apps.pomerium.port from the target's flavour; none until then (fail closed).
        self.capabilities: frozenset[str] = frozenset()
        self._stats_lock = threading.Lock()
        self._recent_jwts: list[str] = []

    def __repr__(self) -> str:
        # Deliberately without the secret or the token.
        return f"<ConfigServiceClient {self.base_url} target={self.target}>"

    def for_cluster(self, cluster_id: str) -> ConfigServiceClient:
        """This client, when ``cluster_id`` is where its policies live (a retired policy of
        this very target); a ConfigService target has no other clusters."""
        if cluster_id != self.cluster_id:
            raise ZeroPermanentError(
                f"policy location {cluster_id!r} is not this ConfigService target's "
                f"({self.cluster_id!r})"
            )
        return self

    # ------------------------------------------------------------------ #
    # Plumbing
    # ------------------------------------------------------------------ #

    def _headers(self) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "Connect-Protocol-Version": "1",
            "Connect-Timeout-Ms": str(int(self.timeout * 1000)),
        }
        if self._secret:
            token = core_jwt(self._secret, self.clock())
            self._recent_jwts = [*self._recent_jwts[-2:], token]
            headers["jwt"] = token
        else:
            headers["Authorization"] = f"Bearer {self._api_token}"
        return headers

    def _redact(self, text: str) -> str:
        secrets = [s for s in (self._secret_text, self._api_token, *self._recent_jwts) if s]
        for secret in sorted(secrets, key=len, reverse=True):
            text = text.replace(secret, REDACTED)
        return text

    def call(self, method: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """One unary call; returns the response message. Raises ZeroError."""
        with self._stats_lock:
            self.calls[("POST", method)] += 1
        url = f"{self.base_url}/{SERVICE}/{method}"
        started = time.monotonic()
        try:
            response = self.session.post(
                url,
                data=json.dumps(dict(body or {})),
                headers=self._headers(),
                timeout=self.timeout,
            )
        except requests.Timeout as exc:
            raise ZeroTransientError(
                f"Pomerium {method} at {self.base_url} timed out after {self.timeout}s"
            ) from exc
        except requests.RequestException as exc:
            raise ZeroTransientError(
                self._redact(
                    f"Pomerium {method} at {self.base_url} failed: {type(exc).__name__}: {exc}"
                )
            ) from None
        logger.debug(
            "ConfigService %s -> %s in %.0f ms",
            method,
            response.status_code,
            (time.monotonic() - started) * 1000,
        )
        if response.status_code != 200:
            raise self._error_for(method, response)
        try:
            data = response.json()
        except ValueError:
            raise ZeroPermanentError(
                f"Pomerium {method} answered 200 with a body that is not JSON", status=200
            ) from None
        if not isinstance(data, dict):
            raise ZeroPermanentError(f"Pomerium {method} answered 200 without a message object")
        return data

    def _error_for(self, method: str, response: requests.Response) -> ZeroError:
        status = response.status_code
        retry_after = _parse_retry_after(response.headers.get("Retry-After"))
        code, message = "", ""
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("code"), str):
            code = body["code"]
            message = str(body.get("message") or "")
        if code:
            text = f"{code}: {message}" if message else code
            status = CODE_STATUS.get(code, status)
            transient = code in TRANSIENT_CODES
        else:
            excerpt = (response.text or "")[:BODY_EXCERPT]
            text = f"HTTP {status}" + (f": {excerpt}" if excerpt else "")
            transient = status == 429 or status >= 500
        text = self._redact(f"Pomerium {method} failed: {text}")
        kind = ZeroTransientError if transient else ZeroPermanentError
        return kind(text, status=status, retry_after=retry_after)

    def _paged(self, method: str, key: str) -> list[dict[str, Any]]:
        """Every item of a List method: by ``offset``, advancing by what came back, until
        ``totalCount`` items are read or a page is empty (or brings nothing new)."""
        items: list[dict[str, Any]] = []
        seen: set[str] = set()
        offset = 0
        for _ in range(MAX_PAGES):
            data = self.call(method, {"offset": offset, "limit": PAGE_SIZE})
            page = data.get(key) or []
            if not isinstance(page, list):
                raise ZeroPermanentError(f"Pomerium {method} answered {key} that is not a list")
            fresh = [
                i
                for i in page
                if isinstance(i, dict) and not (i.get("id") and str(i["id"]) in seen)
            ]
            seen.update(str(i["id"]) for i in fresh if i.get("id"))
            items.extend(fresh)
            offset += len(page)
            total = _count(data.get("totalCount"))
            if not page or not fresh or (total is not None and offset >= total):
                break
        return items

    def _policy_body(self, props: Mapping[str, Any]) -> dict[str, Any]:
        """The wire Policy for the managed properties: ``sourcePpl`` as PPL text."""
        missing = [key for key in ("name", "ppl") if key not in props]
        if missing:
            raise ValueError(f"policy properties need {', '.join(missing)}")
        raw = props["ppl"]
        if not isinstance(raw, list | dict):
            raise TypeError(f"ppl must be a rule object or a list of rules, not {type(raw)}")
        body: dict[str, Any] = {
            "name": props["name"],
            "description": props.get("description") or "",
            "explanation": props.get("explanation") or "",
            "remediation": props.get("remediation") or "",
            "sourcePpl": ppl_lib.dumps(raw),
        }
        if props.get("namespaceId"):
            body["namespaceId"] = props["namespaceId"]
        return body

    # ------------------------------------------------------------------ #
    # Operations (the PolicyStore port, apps.pomerium.port)
    # ------------------------------------------------------------------ #

    def server_info(self) -> dict[str, Any]:
        """``GetServerInfo``: ``{serverType, version}``."""
        return self.call("GetServerInfo", {})

    def list_policies(self) -> list[dict[str, Any]]:
        return [policy_from_wire(p) for p in self._paged("ListPolicies", "policies")]

    def find_policies_by_name(self, name: str) -> list[dict[str, Any]]:
        return [p for p in self.list_policies() if p.get("name") == name]

    def get_policy(self, policy_id: str) -> dict[str, Any]:
        """One policy; ZeroPermanentError(status=404) if it does not exist."""
        return policy_from_wire(self.call("GetPolicy", {"id": policy_id}).get("policy"))

    def create_policy(self, props: Mapping[str, Any]) -> dict[str, Any]:
        answer = self.call("CreatePolicy", {"policy": self._policy_body(props)})
        return policy_from_wire(answer.get("policy"))

    def replace_policy(self, policy_id: str, props: Mapping[str, Any]) -> dict[str, Any]:
        """UpdatePolicy of the managed fields only (``updateMask``); the rest is kept."""
        body = {**self._policy_body(props), "id": policy_id}
        answer = self.call("UpdatePolicy", {"policy": body, "updateMask": ",".join(POLICY_MASK)})
        return policy_from_wire(answer.get("policy"))

    def delete_policy(self, policy_id: str) -> None:
        self.call("DeletePolicy", {"id": policy_id, "removeFromAnyAssignedRoutes": True})

    def list_routes(self) -> list[dict[str, Any]]:
        return self._paged("ListRoutes", "routes")

    def get_route(self, route_id: str) -> dict[str, Any]:
        route = self.call("GetRoute", {"id": route_id}).get("route")
        if not isinstance(route, dict):
            raise ZeroPermanentError(f"Pomerium GetRoute {route_id} answered without a route")
        return route

    def attach_policy(self, route_id: str, policy_id: str) -> bool:
        """Make route ``route_id`` list ``policy_id`` in its ``policyIds``. Returns False
        (and makes no write) when it already does; else one UpdateRoute whose
        ``updateMask`` is ``policyIds`` alone, carrying the route's ids plus ours, so
        nothing else on the route changes."""
        route = self.get_route(route_id)
        ids = [str(i) for i in (route.get("policyIds") or [])]
        if policy_id in ids:
            return False
        self.call(
            "UpdateRoute",
            {"route": {"id": route_id, "policyIds": [*ids, policy_id]}, "updateMask": "policyIds"},
        )
        return True
