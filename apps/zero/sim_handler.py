"""HTTP face of the Zero simulator: routing, bearer checks, fault injection, JSON.

Paths under ``/api/v0`` follow the Zero API contract (docs/pomerium.md §2);
``/_sim/...`` are simulator controls that the real API does not have. The
model itself lives in ``sim_state``; the owning ``simulator.ZeroSimulator``
holds tokens, fault settings and counters.
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
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from apps.zero import ppl as ppl_lib
from apps.zero.sim_state import SimError

if TYPE_CHECKING:
    from apps.zero.simulator import ZeroSimulator

logger = logging.getLogger("apps.zero.simulator")

API_PREFIX = "/api/v0"
MAX_BODY = 1024 * 1024


@dataclass(frozen=True)
class Endpoint:
    method: str
    template: str  # relative to API_PREFIX, as counted in ``calls``
    name: str
    pattern: re.Pattern[str]


def _endpoint(method: str, template: str, name: str) -> Endpoint:
    regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
    return Endpoint(method, template, name, re.compile(f"^{regex}$"))


ORG = "/organizations/{org}"
API_ENDPOINTS = [
    _endpoint("POST", "/token", "token"),
    _endpoint("GET", ORG + "/clusters", "clusters"),
    _endpoint("GET", ORG + "/namespaces", "namespaces"),
    _endpoint("GET", ORG + "/policies", "list_policies"),
    _endpoint("POST", ORG + "/policies", "create_policy"),
    _endpoint("GET", ORG + "/policies/{id}", "get_policy"),
    _endpoint("PUT", ORG + "/policies/{id}", "replace_policy"),
    _endpoint("PATCH", ORG + "/policies/{id}", "patch_policy"),
    _endpoint("DELETE", ORG + "/policies/{id}", "delete_policy"),
    _endpoint("GET", ORG + "/routes", "routes"),
    _endpoint("GET", ORG + "/clusters/{cluster}/settings", "cluster_settings"),
    _endpoint("GET", ORG + "/changesets", "changesets"),
    _endpoint("POST", ORG + "/changesets/{id}/apply", "apply_changeset"),
    _endpoint("GET", ORG + "/activityLogs", "activity_logs"),
]


def _int_param(query: dict[str, str], name: str, default: int | None) -> int | None:
    if name not in query:
        return default
    try:
        value = int(query[name])
    except ValueError:
        raise SimError(400, f"{name} must be an integer") from None
    if value < 0:
        raise SimError(400, f"{name} must not be negative")
    return value


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
        body = b"" if status == 204 else json.dumps(payload, default=str).encode("utf-8")
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
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise SimError(413, "request body too large")
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise SimError(400, "request body is not valid JSON") from None

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        path = url.path.rstrip("/") or "/"
        try:
            body = self._read_body()
            if path.startswith("/_sim/"):
                status, payload, headers = self._control(method, path, query, body)
            elif path.startswith(API_PREFIX + "/"):
                status, payload, headers = self._api(method, path[len(API_PREFIX) :], query, body)
            else:
                raise SimError(404, f"no such path {url.path}")
        except SimError as exc:
            error: dict[str, Any] = {"error": exc.message}
            if exc.details:
                error["details"] = exc.details
            status, payload, headers = exc.status, error, {}
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

        delay, fault = sim.draw_fault(is_token=endpoint.name == "token")
        if delay:
            time.sleep(delay)
        if fault is not None:
            # Answer before touching any state: a faulted write is not applied.
            headers = {"Retry-After": "1"} if fault == 429 else {}
            return fault, {"error": f"simulated fault {fault}"}, headers

        if endpoint.name == "token":
            return 200, self._token(body), {}
        if not sim.check_authorization(self.headers.get("Authorization")):
            raise SimError(401, "missing, invalid or expired ID token")
        if params["org"] != sim.organization_id:
            raise SimError(404, f"organization {params['org']} not found")
        status, payload = getattr(self, "_api_" + endpoint.name)(params, query, body)
        return status, payload, {}

    def _token(self, body: object) -> dict[str, str]:
        sim = self.server.sim
        if not isinstance(body, dict) or body.get("refreshToken") != sim.api_token:
            raise SimError(401, "invalid refresh token")
        id_token, ttl = sim.issue_token()
        return {"idToken": id_token, "expiresInSeconds": str(ttl)}

    # ----------------------------------------------------------- endpoints

    def _api_clusters(self, params: dict, query: dict, body: object) -> tuple[int, object]:
        return 200, [self.server.sim.cluster_info()]

    def _api_namespaces(self, params: dict, query: dict, body: object) -> tuple[int, object]:
        return 200, self.server.sim.namespaces()

    def _api_list_policies(self, params: dict, query: dict, body: object) -> tuple[int, object]:
        namespace_id = query.get("namespaceId")
        if not namespace_id:
            raise SimError(400, "namespaceId is required")
        filters = None
        if query.get("filter"):
            try:
                filters = json.loads(query["filter"])
            except ValueError:
                raise SimError(400, "filter must be JSON") from None
            if not isinstance(filters, dict):
                raise SimError(400, "filter must be a JSON object")
        return 200, self.server.sim.state.list_policies(
            namespace_id,
            limit=_int_param(query, "limit", None),
            offset=_int_param(query, "offset", 0) or 0,
            order_by=query.get("orderBy"),
            filters=filters,
        )

    def _api_create_policy(self, params: dict, query: dict, body: object) -> tuple[int, object]:
        return 201, self.server.sim.state.create_policy(body)

    def _api_get_policy(self, params: dict, query: dict, body: object) -> tuple[int, object]:
        return 200, self.server.sim.state.get_policy(params["id"])

    def _api_replace_policy(self, params: dict, query: dict, body: object) -> tuple[int, object]:
        return 200, self.server.sim.state.replace_policy(params["id"], body)

    def _api_patch_policy(self, params: dict, query: dict, body: object) -> tuple[int, object]:
        return 200, self.server.sim.state.patch_policy(params["id"], body)

    def _api_delete_policy(self, params: dict, query: dict, body: object) -> tuple[int, object]:
        self.server.sim.state.delete_policy(params["id"])
        return 204, None

    def _api_routes(self, params: dict, query: dict, body: object) -> tuple[int, object]:
        return 200, self.server.sim.state.list_routes(query.get("namespaceId"))

    def _api_cluster_settings(self, params: dict, query: dict, body: object) -> tuple[int, object]:
        sim = self.server.sim
        if params["cluster"] != sim.cluster_id:
            raise SimError(404, f"cluster {params['cluster']} not found")
        return 200, {
            "clusterId": sim.cluster_id,
            "autoApplyChangesets": sim.auto_apply,
            "passIdentityHeaders": True,
        }

    def _api_changesets(self, params: dict, query: dict, body: object) -> tuple[int, object]:
        return 200, self.server.sim.state.list_changesets(
            query.get("clusterId"), query.get("status")
        )

    def _api_apply_changeset(self, params: dict, query: dict, body: object) -> tuple[int, object]:
        return 200, self.server.sim.state.apply_changeset(params["id"])

    def _api_activity_logs(self, params: dict, query: dict, body: object) -> tuple[int, object]:
        return 200, self.server.sim.state.activity_logs(
            query.get("entityType"),
            query.get("entityId"),
            _int_param(query, "limit", None),
            query.get("orderBy"),
        )

    # ------------------------------------------------------------ controls

    def _control(
        self, method: str, path: str, query: dict[str, str], body: object
    ) -> tuple[int, object, dict[str, str]]:
        sim = self.server.sim
        if (method, path) == ("GET", "/_sim/evaluate"):
            return 200, self._evaluate(query), {}
        if (method, path) == ("GET", "/_sim/state"):
            return 200, {**sim.state.dump(), "faults": sim.faults()}, {}
        if (method, path) == ("POST", "/_sim/faults"):
            if not isinstance(body, dict):
                raise SimError(400, "body must be a JSON object")
            try:
                sim.set_faults(**body)
            except (TypeError, ValueError) as exc:
                raise SimError(400, str(exc)) from None
            return 200, sim.faults(), {}
        if (method, path) == ("POST", "/_sim/settings"):
            if not isinstance(body, dict) or not isinstance(body.get("autoApplyChangesets"), bool):
                raise SimError(400, 'body must be {"autoApplyChangesets": true|false}')
            sim.auto_apply = body["autoApplyChangesets"]
            return 200, {"autoApplyChangesets": sim.auto_apply}, {}
        if (method, path) == ("POST", "/_sim/reset"):
            sim.reset()
            return 204, None, {}
        raise SimError(404, f"no such simulator control {method} {path}")

    def _evaluate(self, query: dict[str, str]) -> dict[str, object]:
        sim = self.server.sim
        policy, email = query.get("policy"), query.get("email")
        if not policy or email is None:
            raise SimError(400, "policy and email are required")
        at: datetime | None = None
        if query.get("at"):
            at = ppl_lib.parse_rfc3339(query["at"])
            if at is None:
                raise SimError(400, "at must be an RFC 3339 timestamp with Z or an offset")
        groups = [g for g in query.get("groups", "").split(",") if g]
        try:
            allowed = sim.evaluate(policy, email, at=at, groups=groups)
        except KeyError:
            raise SimError(404, f"no applied policy {policy!r}") from None
        return {"allow": allowed, "policy": policy, "email": email}
