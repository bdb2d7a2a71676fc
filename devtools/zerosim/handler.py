"""HTTP face of the Zero simulator: routing, strict request checks, faults, JSON.

Paths under ``/api/v0`` follow the Zero API contract (``docs/zero-api.md``,
``apps/pomerium/contract``); ``/_sim/...`` are simulator controls that the real API
does not have (``controls``). The model lives in ``state``; the owning
``simulator.ZeroSimulator`` holds tokens, fault settings and counters.

Strict where the contract is silent: unknown or repeated query parameters,
unknown ``orderBy`` fields, ``filter`` (not modelled), a body where none is
expected, a body that is not ``application/json`` and every body that does not
validate against its schema are refused (400/415) and change nothing. Every
successful answer is checked against its schema before it is sent (a policy's
``ppl`` excepted, for speed: it was validated on the way in); a mismatch is a
simulator bug and answers 500.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from apps.pomerium import contract
from devtools.zerosim import controls as sim_controls
from devtools.zerosim.views import ACTIVITY_ORDER, CHANGESET_ORDER, SimError, order

if TYPE_CHECKING:
    from devtools.zerosim.simulator import ZeroSimulator
    from devtools.zerosim.state import SimState

logger = logging.getLogger("devtools.zerosim.simulator")

API_PREFIX = "/api/v0"
MAX_BODY = 1024 * 1024
NO_BODY = object()  # the request carried no body


@dataclass(frozen=True)
class Endpoint:
    method: str
    template: str  # relative to API_PREFIX, as counted in ``calls``
    name: str
    pattern: re.Pattern[str]
    answer: str | None  # contract schema of a successful answer
    query: frozenset[str] = frozenset()
    body: bool = False  # whether a JSON body is expected
    write: bool = False  # a policy write ("applied, then 5xx" applies to these)


def _endpoint(
    method: str,
    template: str,
    name: str,
    answer: str | None,
    query: tuple[str, ...] = (),
    *,
    body: bool = False,
    write: bool = False,
) -> Endpoint:
    regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
    return Endpoint(
        method, template, name, re.compile(f"^{regex}$"), answer, frozenset(query), body, write
    )


ORG = "/organizations/{org}"
PAGING = ("limit", "offset", "orderBy", "filter")
API_ENDPOINTS = [
    _endpoint("POST", "/token", "token", "TokenResponse", body=True),
    _endpoint("GET", ORG + "/clusters", "clusters", "ClusterList"),
    _endpoint("GET", ORG + "/clusters/{cluster}", "cluster", "Cluster"),
    _endpoint("GET", ORG + "/clusters/{cluster}/settings", "cluster_settings", "Settings"),
    _endpoint("GET", ORG + "/namespaces", "namespaces", "NamespaceList"),
    _endpoint(
        "GET",
        ORG + "/policies",
        "list_policies",
        "PolicyList",
        ("namespaceId", "includeDescendants", *PAGING),
    ),
    _endpoint("POST", ORG + "/policies", "create_policy", "Policy", body=True, write=True),
    _endpoint("GET", ORG + "/policies/{id}", "get_policy", "Policy"),
    _endpoint("PUT", ORG + "/policies/{id}", "replace_policy", "Policy", body=True, write=True),
    _endpoint("PATCH", ORG + "/policies/{id}", "patch_policy", "Policy", body=True, write=True),
    _endpoint("DELETE", ORG + "/policies/{id}", "delete_policy", None, write=True),
    _endpoint(
        "GET",
        ORG + "/routes",
        "routes",
        "RouteList",
        ("namespaceId", "includeDescendants", *PAGING),
    ),
    _endpoint(
        "GET", ORG + "/changesets", "changesets", "ChangesetList", ("clusterId", "status", *PAGING)
    ),
    _endpoint("POST", ORG + "/changesets/{id}/apply", "apply_changeset", "Changeset"),
    _endpoint(
        "GET",
        ORG + "/activityLogs",
        "activity_logs",
        "ActivityLogList",
        (
            "entityType",
            "entityId",
            "namespaceId",
            "changesetId",
            "userId",
            "activityType",
            *PAGING,
        ),
    ),
]
ACTIVITY_FILTERS = (
    "entityType",
    "entityId",
    "namespaceId",
    "changesetId",
    "userId",
    "activityType",
)


def _int_param(query: dict[str, str], name: str) -> int | None:
    if name not in query:
        return None
    value = query[name]
    if not value.isdigit():
        raise SimError(400, f"{name} must be a non-negative integer")
    return int(value)


def _paging(query: dict[str, str], max_page_size: int) -> dict[str, Any]:
    """limit (capped at the server's page size, also when not asked), offset, orderBy."""
    if "filter" in query:
        raise SimError(
            400, "filter is not supported by the simulator: page and select on the client"
        )
    limit = _int_param(query, "limit")
    return {
        "limit": max_page_size if limit is None else min(limit, max_page_size),
        "offset": _int_param(query, "offset") or 0,
        "order_by": query.get("orderBy") or None,
    }


def _enum_param(query: dict[str, str], name: str, allowed: tuple[str, ...]) -> str | None:
    value = query.get(name)
    if value is not None and value not in allowed:
        raise SimError(400, f"{name} must be one of {', '.join(allowed)}")
    return value


def _bool_param(query: dict[str, str], name: str) -> None:
    if name in query and query[name] not in ("true", "false"):
        raise SimError(400, f"{name} must be true or false")


def _without_ppl(payload: object) -> object:
    """An answer with each policy's ppl stubbed: the self-check stays cheap for big policies.

    Every stored ppl was validated when it was written; tests validate whole answers.
    """
    if isinstance(payload, dict) and "ppl" in payload:
        return {**payload, "ppl": {}}
    if isinstance(payload, list):
        return [_without_ppl(item) for item in payload]
    return payload


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")  # Python's json would accept NaN and Infinity


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate key in a JSON object")
    return dict(pairs)


class SimHTTPServer(ThreadingHTTPServer):
    """Tracks open connections so ``stop()`` can cut idle keep-alive sockets.

    Without that, a client's pooled connection would keep reaching a handler
    thread of a server that was already stopped.
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sim: ZeroSimulator) -> None:
        self.sim = sim
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, SimRequestHandler)

    def close_connections(self) -> None:
        with self.connections_lock:
            for sock in list(self.connections):
                with contextlib.suppress(OSError):  # already closed by the client
                    sock.shutdown(socket.SHUT_RDWR)
            self.connections.clear()


class SimRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real API behind a proxy
    timeout = 60  # idle keep-alive connections do not hold a thread forever
    # Headers and body go out in separate writes; without this, Nagle plus the
    # client's delayed ACK adds ~40 ms to every call.
    disable_nagle_algorithm = True
    server: SimHTTPServer

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # ------------------------------------------------------------ plumbing

    def _reply(
        self, status: int, payload: object = None, headers: dict[str, str] | None = None
    ) -> None:
        body = b"" if status == 204 else json.dumps(payload).encode("utf-8")
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if status != 204:
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
        if self.server.sim.stopping:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def _read_body(self) -> object:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise SimError(400, "Content-Length is not a number") from None
        if length > MAX_BODY:
            raise SimError(413, "request body too large")
        raw = self.rfile.read(length) if length > 0 else b""
        if not raw:
            return NO_BODY
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise SimError(415, "request body must be application/json")
        try:
            return json.loads(raw, parse_constant=_no_constant, object_pairs_hook=_no_duplicates)
        except (ValueError, UnicodeDecodeError):
            raise SimError(400, "request body is not valid JSON") from None

    def _query(self, raw: str) -> dict[str, str]:
        parsed = parse_qs(raw, keep_blank_values=True)
        repeated = sorted(k for k, v in parsed.items() if len(v) > 1)
        if repeated:
            raise SimError(400, f"query parameter {repeated[0]} is given more than once")
        return {k: v[0] for k, v in parsed.items()}

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        headers: dict[str, str] = {}
        try:
            body = self._read_body()
            query = self._query(url.query)
            if path.startswith("/_sim/"):
                status, payload = sim_controls.handle(
                    self.server.sim, method, path, query, None if body is NO_BODY else body
                )
            elif path.startswith(API_PREFIX + "/"):
                status, payload, headers = self._api(method, path[len(API_PREFIX) :], query, body)
            else:
                raise SimError(404, f"no such path {url.path}")
        except SimError as exc:
            error: dict[str, Any] = {"error": exc.message}
            if exc.details:
                error["details"] = exc.details
            status, payload, headers = exc.status, error, exc.headers
        except Exception:  # a bug in the simulator must still answer, and show up in logs
            logger.exception("Zero simulator failed on %s %s", method, url.path)
            status, payload, headers = 500, {"error": "simulator bug"}, {}
        self._reply(status, payload, headers)

    def _api(
        self, method: str, sub: str, query: dict[str, str], body: object
    ) -> tuple[int, object, dict[str, str]]:
        sim = self.server.sim
        matches = [(e, m) for e in API_ENDPOINTS if (m := e.pattern.match(sub))]
        if not matches:
            raise SimError(404, f"no such path {API_PREFIX}{sub}")
        found = [(e, m) for e, m in matches if e.method == method]
        if not found:
            raise SimError(405, f"{method} not allowed on {API_PREFIX}{sub}")
        endpoint, match = found[0]
        params = match.groupdict()
        sim.count_call(method, endpoint.template)

        if sim.rate_limited():
            raise SimError(429, "rate limit exceeded", headers={"Retry-After": "1"})
        delay, fault = sim.draw_fault(is_token=endpoint.name == "token")
        if delay:
            time.sleep(delay)
        if fault is not None:
            # Answer before touching any state: a faulted call is not processed.
            headers = {"Retry-After": "1"} if fault == 429 else {}
            raise SimError(fault, f"simulated fault {fault}", headers=headers)

        unknown = sorted(set(query) - endpoint.query)
        if unknown:
            raise SimError(400, f"unknown query parameter {unknown[0]}")
        if endpoint.body and body is NO_BODY:
            body = None  # validated below: "None is not of type 'object'"
        elif not endpoint.body and body is not NO_BODY:
            raise SimError(400, f"{method} {endpoint.template} takes no request body")

        if endpoint.name == "token":
            return 200, self._checked(endpoint, self._token(body)), {}
        if not sim.check_authorization(self.headers.get("Authorization")):
            raise SimError(401, "missing, invalid or expired ID token")
        if params["org"] != sim.organization_id:
            raise SimError(404, f"organization {params['org']} not found")
        status, payload = getattr(self, "_api_" + endpoint.name)(params, query, body)
        payload = self._checked(endpoint, payload)
        if endpoint.write and sim.draw_lost_answer():
            # The write is committed; only its answer is lost on the way back.
            raise SimError(502, "simulated fault 502 after the write was applied")
        return status, payload, {}

    def _checked(self, endpoint: Endpoint, payload: object) -> object:
        if endpoint.answer is not None and self.server.sim.validate_answers:
            problems = contract.errors(endpoint.answer, _without_ppl(payload))
            if problems:
                logger.error("simulator answer is not a %s: %s", endpoint.answer, problems)
                raise SimError(500, f"simulator bug: answer is not a valid {endpoint.answer}")
        return payload

    def _token(self, body: object) -> dict[str, str]:
        problems = contract.errors("TokenRequest", body)
        if problems:
            raise SimError(400, "body is not a valid TokenRequest", problems)
        sim = self.server.sim
        assert isinstance(body, dict)
        if body["refreshToken"] != sim.api_token:
            raise SimError(401, "invalid refresh token")
        id_token, ttl = sim.issue_token()
        return {"idToken": id_token, "expiresInSeconds": str(ttl)}

    # ----------------------------------------------------------- endpoints

    def _reachable(self, state: SimState) -> SimState:
        """``state``, unless its cluster has an injected outage (then that status)."""
        status = self.server.sim.outages.get(state.cluster_id)
        if status is not None:
            headers = {"Retry-After": "1"} if status == 429 else {}
            raise SimError(
                status, f"simulated outage of cluster {state.cluster_id}", headers=headers
            )
        return state

    def _cluster_state(self, cluster_id: str) -> SimState:
        state = self.server.sim.states.get(cluster_id)
        if state is None:
            raise SimError(404, f"cluster {cluster_id} not found")
        return self._reachable(state)

    def _api_clusters(self, params: dict, query: dict, body: object) -> tuple[int, object]:
        sim = self.server.sim
        if sim.cluster_list_status != 200:
            raise SimError(sim.cluster_list_status, "not allowed to list clusters")
        return 200, [sim.cluster_info(cluster_id) for cluster_id in sim.states]

    def _api_cluster(self, params: dict, query: dict, body: object) -> tuple[int, object]:
        sim = self.server.sim
        state = self._cluster_state(params["cluster"])
        if sim.cluster_read_status != 200:
            raise SimError(
                sim.cluster_read_status, f"not allowed to read cluster {state.cluster_id}"
            )
        return 200, sim.cluster_info(state.cluster_id)

    def _api_cluster_settings(self, params: dict, query: dict, body: object) -> tuple[int, object]:
        state = self._cluster_state(params["cluster"])
        return 200, self.server.sim.settings(state.cluster_id)

    def _api_namespaces(self, params: dict, query: dict, body: object) -> tuple[int, object]:
        return 200, self.server.sim.namespaces()

    def _paging(self, query: dict[str, str]) -> dict[str, Any]:
        return _paging(query, self.server.sim.state.max_page_size)

    def _namespace(self, query: dict[str, str]) -> str:
        namespace_id = query.get("namespaceId")
        if not namespace_id:
            raise SimError(400, "namespaceId is required")
        _bool_param(query, "includeDescendants")
        return namespace_id

    def _namespace_state(self, namespace_id: str | None) -> SimState:
        return self._reachable(self.server.sim.state_for_namespace(namespace_id))

    def _policy_state(self, policy_id: str) -> SimState:
        return self._reachable(self.server.sim.state_for_policy(policy_id))

    def _api_list_policies(self, params: dict, query: dict, body: object) -> tuple[int, object]:
        namespace_id = self._namespace(query)
        state = self._namespace_state(namespace_id)
        return 200, state.list_policies(namespace_id, **self._paging(query))

    def _api_create_policy(self, params: dict, query: dict, body: object) -> tuple[int, object]:
        namespace_id = body.get("namespaceId") if isinstance(body, dict) else None
        state = self._namespace_state(namespace_id if isinstance(namespace_id, str) else None)
        return 201, state.create_policy(body)

    def _api_get_policy(self, params: dict, query: dict, body: object) -> tuple[int, object]:
        return 200, self._policy_state(params["id"]).get_policy(params["id"])

    def _api_replace_policy(self, params: dict, query: dict, body: object) -> tuple[int, object]:
        return 200, self._policy_state(params["id"]).replace_policy(params["id"], body)

    def _api_patch_policy(self, params: dict, query: dict, body: object) -> tuple[int, object]:
        return 200, self._policy_state(params["id"]).patch_policy(params["id"], body)

    def _api_delete_policy(self, params: dict, query: dict, body: object) -> tuple[int, object]:
        self._policy_state(params["id"]).delete_policy(params["id"])
        return 204, None

    def _api_routes(self, params: dict, query: dict, body: object) -> tuple[int, object]:
        namespace_id = self._namespace(query)
        state = self._namespace_state(namespace_id)
        return 200, state.list_routes(namespace_id, **self._paging(query))

    def _api_changesets(self, params: dict, query: dict, body: object) -> tuple[int, object]:
        status = _enum_param(query, "status", contract.enum("ChangesetStatus"))
        sim = self.server.sim
        cluster_id = query.get("clusterId")
        paging = self._paging(query)
        if cluster_id is not None:
            state = self._cluster_state(cluster_id)
            return 200, state.list_changesets(cluster_id, status, **paging)
        if len(sim.states) == 1:
            return 200, self._reachable(sim.state).list_changesets(None, status, **paging)
        # The organization's changesets: every cluster's, newest first, then paged.
        views = [
            view
            for state in sim.states.values()
            for view in self._reachable(state).list_changesets(None, status)
        ]
        views.sort(key=lambda v: v["createdAt"], reverse=True)
        if paging["order_by"]:
            views = order(views, paging["order_by"], CHANGESET_ORDER)
        start = paging["offset"]
        return 200, views[start : start + paging["limit"]]

    def _api_apply_changeset(self, params: dict, query: dict, body: object) -> tuple[int, object]:
        state = self._reachable(self.server.sim.state_for_changeset(params["id"]))
        return 200, state.apply_changeset(params["id"])

    def _api_activity_logs(self, params: dict, query: dict, body: object) -> tuple[int, object]:
        _enum_param(query, "entityType", contract.enum("EntityType"))
        _enum_param(query, "activityType", contract.enum("ActivityType"))
        filters = {k: query[k] for k in ACTIVITY_FILTERS if k in query}
        sim = self.server.sim
        paging = self._paging(query)
        if "namespaceId" in filters:
            state: SimState | None = sim.state_for_namespace(filters["namespaceId"])
        elif "changesetId" in filters:
            state = sim.state_for_changeset(filters["changesetId"])
        elif "entityId" in filters:
            state = sim.state_for_policy(filters["entityId"])
        else:
            state = sim.state if len(sim.states) == 1 else None
        if state is not None:
            return 200, self._reachable(state).activity_logs(filters=filters, **paging)
        # The organization's log: every cluster's entries, newest first, then paged.
        entries = [
            entry
            for each in sim.states.values()
            for entry in self._reachable(each).activity_logs(filters=filters)
        ]
        entries.sort(key=lambda e: e["createdAt"], reverse=True)
        if paging["order_by"]:
            entries = order(entries, paging["order_by"], ACTIVITY_ORDER)
        start = paging["offset"]
        return 200, entries[start : start + paging["limit"]]
