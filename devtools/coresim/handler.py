"""HTTP face of the Core stand-in: Connect unary JSON, the auth rule, faults, ``/_sim``.

The wire, as Pomerium's OpenAPI document and ``connectrpc.com/connect`` define it:

* ``POST /pomerium.config.ConfigService/<Method>``; another HTTP method answers 405
  (``Allow: POST``), a path that names no method 404;
* ``Content-Type: application/json`` (a charset parameter allowed), else 415 with
  ``Accept-Post``; ``Connect-Protocol-Version: 1`` (required by the document), else
  ``invalid_argument``; an empty body is not a message (``invalid_argument``);
* a failure is a Connect error body ``{"code", "message"}`` with the HTTP status of
  Connect's code table (``CODE_STATUS``); the methods of the real service the portal does
  not use answer ``unimplemented``;
* the JWT (``auth``) is checked before the body is read: no token ``unauthenticated``
  ("unauthenticated"), a bad one ``unauthenticated`` ("invalid JWT"), as
  ``pkg/grpcutil/options.go`` words them;
* requests are checked against ``apps/pomerium/configservice_contract`` (closed messages: an
  unknown field, a snake_case name or a wrong type is ``invalid_argument``), answers too
  (a mismatch is a stand-in bug: ``internal``, logged).

Order of one call: count it, sleep the drawn latency, injected fault or outage, content
type, protocol version, JWT, body, schema, the method, the answer's schema, then a lost
answer for a committed write. The shared secret and tokens are never logged.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from apps.pomerium import configservice_contract as contract
from devtools.coresim.state import CoreError

if TYPE_CHECKING:
    from devtools.coresim.simulator import CoreSimulator

logger = logging.getLogger("devtools.coresim")

SERVICE_PREFIX = "/pomerium.config.ConfigService/"
MAX_BODY = 1024 * 1024
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
WRITES = frozenset({"CreatePolicy", "UpdatePolicy", "DeletePolicy", "UpdateRoute"})
# ConfigService methods the stand-in does not model (the portal does not call them).
UNMODELLED = frozenset(
    {
        "CreateKeyPair",
        "CreateRoute",
        "CreateServiceAccount",
        "DeleteKeyPair",
        "DeleteRoute",
        "DeleteServiceAccount",
        "GetKeyPair",
        "GetServiceAccount",
        "GetSettings",
        "ListAvailableLogFields",
        "ListKeyPairs",
        "ListServiceAccounts",
        "ListSettings",
        "UpdateKeyPair",
        "UpdateServiceAccount",
        "UpdateSettings",
    }
)


class SimHTTPServer(ThreadingHTTPServer):
    """Tracks open connections so ``stop()`` can cut idle keep-alive sockets."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sim: CoreSimulator) -> None:
        self.sim = sim
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, CoreRequestHandler)

    def close_connections(self) -> None:
        with self.connections_lock:
            for sock in list(self.connections):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            self.connections.clear()


def _uint64(value: object, name: str) -> int | None:
    """proto-JSON uint64: a number or a decimal string; None when absent."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise CoreError("invalid_argument", f"invalid value for uint64 field {name}")
    if isinstance(value, str):
        if not value.isdigit() or not value.isascii():
            raise CoreError("invalid_argument", f"invalid value for uint64 field {name}")
        value = int(value)
    if not isinstance(value, int) or not 0 <= value < 2**64:
        raise CoreError("invalid_argument", f"invalid value for uint64 field {name}")
    return value


class CoreRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60
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

    # ------------------------------------------------------------- sending

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload: object) -> None:
        body = json.dumps(payload, separators=(",", ":")).encode()
        self._send(status, body, {"Content-Type": "application/json"})

    def _error(self, code: str, message: str) -> None:
        self._json(CODE_STATUS[code], {"code": code, "message": message})

    def _drain(self) -> bytes | None:
        """The request body (b"" if none); None when it is too large or unreadable."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True  # chunked bodies are not read: never reuse the socket
        if length < 0 or length > MAX_BODY:
            self.close_connection = True
            return None
        return self.rfile.read(length) if length else b""

    # ------------------------------------------------------------- routing

    def do_POST(self) -> None:
        self._route("POST")

    def do_GET(self) -> None:
        self._route("GET")

    def do_PUT(self) -> None:
        self._route("PUT")

    def do_PATCH(self) -> None:
        self._route("PATCH")

    def do_DELETE(self) -> None:
        self._route("DELETE")

    def _route(self, verb: str) -> None:
        path = self.path.split("?", 1)[0]
        try:
            if path.startswith("/_sim/"):
                self._control(verb, path.removeprefix("/_sim/"))
            elif path.startswith(SERVICE_PREFIX):
                self._rpc(verb, path.removeprefix(SERVICE_PREFIX))
            else:
                self._drain()
                self._send(404, b"404 page not found\n", {"Content-Type": "text/plain"})
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception:  # a stand-in bug must not look like a hang
            logger.exception("Core stand-in failed on %s %s", verb, path)
            with contextlib.suppress(OSError):
                self._error("internal", "stand-in error")

    # ----------------------------------------------------------------- RPC

    def _rpc(self, verb: str, method: str) -> None:
        sim = self.server.sim
        known = method in contract.METHODS
        if not known and method not in UNMODELLED:
            self._drain()
            self._send(404, b"404 page not found\n", {"Content-Type": "text/plain"})
            return
        if verb != "POST":
            self._drain()
            self._send(405, b"", {"Allow": "POST"})
            return
        sim.count_call(method)
        delay, fault = sim.draw_fault()
        if delay:
            time.sleep(delay)
        raw = self._drain()
        if fault is not None:
            self._error(fault[0], "simulated failure of the control plane")
            return
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "application/json":
            self._send(415, b"", {"Accept-Post": "application/json, application/proto"})
            return
        if self.headers.get("Connect-Protocol-Version") != "1":
            self._error(
                "invalid_argument",
                'missing required header: set Connect-Protocol-Version to "1"',
            )
            return
        refusal = sim.jwt_refusal(self.headers.get("jwt"), self.headers.get("Authorization"))
        if refusal is not None:
            self._error("unauthenticated", refusal)
            return
        if not known:
            self._error("unimplemented", f"pomerium.config.ConfigService.{method} is not modelled")
            return
        if raw is None:
            self._error("resource_exhausted", f"message larger than {MAX_BODY} bytes")
            return
        request_type = f"*config.{method}Request"
        if not raw:
            self._error(
                "invalid_argument",
                f"unmarshal into {request_type}: zero-length payload is not a valid JSON object",
            )
            return
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):
            self._error("invalid_argument", f"unmarshal into {request_type}: invalid JSON")
            return
        problems = contract.errors(f"{method}Request", body)
        if problems:
            self._error(
                "invalid_argument", f"unmarshal into {request_type}: " + "; ".join(problems)
            )
            return
        try:
            answer = sim.call(method, body)
        except CoreError as exc:
            self._error(exc.code, exc.message)
            return
        problems = contract.errors(f"{method}Response", answer)
        if problems:
            logger.error("Core stand-in answer breaks the contract: %s", problems)
            self._error("internal", "stand-in answer does not match the contract")
            return
        if method in WRITES and sim.draw_lost_answer():
            self._error("unavailable", "simulated failure after the write was committed")
            return
        self._json(200, answer)

    # ------------------------------------------------------------ controls

    def _control(self, verb: str, name: str) -> None:
        sim = self.server.sim
        raw = self._drain()
        if verb == "GET" and name in ("state", "calls", "faults", "settings"):
            self._json(200, sim.control_read(name))
            return
        if verb != "POST":
            self._json(405, {"error": "use GET for state/calls/faults/settings, POST otherwise"})
            return
        if raw is None:
            self._json(413, {"error": "body too large"})
            return
        try:
            body = json.loads(raw) if raw else {}
        except (ValueError, RecursionError):
            self._json(400, {"error": "body is not JSON"})
            return
        if not isinstance(body, dict):
            self._json(400, {"error": "body must be a JSON object"})
            return
        try:
            status, answer = sim.control(name, body)
        except KeyError as exc:
            self._json(404, {"error": f"not found: {exc.args[0] if exc.args else name}"})
            return
        except (ValueError, TypeError) as exc:
            self._json(400, {"error": str(exc)})
            return
        self._json(status, answer)
