"""A stand-in portal API for the `jit` unit tests: a real HTTP server with canned answers.

The objects it serves have the API's shapes (``GrantOut``, ``RequestOut``: docs/api.md),
``access`` and ``outcome`` included, so a test says only what differs. The flows against
the real portal are in ``test_jit_demo.py``.
"""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = tuple[int, dict[str, str], bytes]


def fake_token(**claims: object) -> str:
    """A JWT-shaped token with ``claims`` (unsigned: jit only reads who and until when)."""

    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'ES256'})}.{part(claims)}.c2ln"


def as_json(status: int, data: object, **headers: str) -> Answer:
    return status, {"Content-Type": "application/json", **headers}, json.dumps(data).encode()


def error(status: int, message: str, **extra: object) -> Answer:
    return as_json(status, {"error": {"message": message, **extra}})


def access(state: str, label: str, **fields: object) -> dict[str, object]:
    """The API's ``access`` object of a grant."""
    return {"state": state, "label": label, "until": None, "opens_at": None, "detail": None} | (
        fields
    )


ALLOWED = access("allowed", "Allowed now, until 17:00 CET", until="2030-01-07T16:00:00Z")


def grant(gid: int = 40, **fields: object) -> dict[str, object]:
    return {
        "id": gid,
        "request_id": 12,
        "resource": "grafana-admin",
        "resource_name": "Grafana admin",
        "email": "alice@example.com",
        "state": "active",
        "not_before": "2030-01-07T09:00:00Z",
        "expires_at": "2030-01-07T16:00:00Z",
        "is_break_glass": False,
        "sync_status": "live",
        "access": ALLOWED,
        "live_at": "2030-01-07T09:00:02Z",
        "enforced_at": "2030-01-07T09:00:02Z",
        "revoked_at": None,
        "revoke_reason": "",
        "level": None,
        "criteria": [],
        "schedule": None,
    } | fields


def request(rid: int = 12, **fields: object) -> dict[str, object]:
    return {
        "id": rid,
        "resource": "grafana-admin",
        "resource_name": "Grafana admin",
        "kind": "new",
        "state": "approved",
        "outcome": "Approved",
        "requester": "alice@example.com",
        "filed_by": "alice@example.com",
        "duration_minutes": 60,
        "approved_duration_minutes": None,
        "level": None,
        "approved_level": None,
        "start_at": None,
        "justification": "Tune the alert rules",
        "ticket": "",
        "created_at": "2030-01-07T08:59:00Z",
        "expires_at": "2030-01-08T08:59:00Z",
        "decided_by": "bob@example.com",
        "decided_at": "2030-01-07T09:00:00Z",
        "decision_reason": "",
        "approvals": 1,
        "approvals_required": 1,
        "grant": grant(),
    } | fields


class CannedPortal:
    """Answers by method and path (the query is not matched, only recorded).

    ``answer(method, path, *answers)`` queues answers for that path: each call takes the
    next, the last one repeats. Any other path is the API's 404. ``seen`` lists every call
    as (method, path with query, headers, body).
    """

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[Answer]] = {}
        self.seen: list[tuple[str, str, dict[str, str], bytes]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.portal = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def answer(self, method: str, path: str, *answers: Answer | object) -> None:
        self.routes[(method, "/api/v1" + path)] = [
            a if isinstance(a, tuple) else as_json(200, a) for a in answers
        ]

    def calls(self, method: str | None = None) -> list[str]:
        return [path for m, path, _, _ in self.seen if method in (None, m)]

    def take(self, method: str, path: str) -> Answer:
        queued = self.routes.get((method, path.partition("?")[0]))
        if not queued:
            return error(404, "Not found.", code="not_found")
        return queued.pop(0) if len(queued) > 1 else queued[0]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _handle(self) -> None:
        portal: CannedPortal = self.server.portal  # type: ignore[attr-defined]
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        portal.seen.append((self.command, self.path, dict(self.headers.items()), body))
        status, headers, payload = portal.take(self.command, self.path)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _handle

    def log_message(self, format: str, *args: Any) -> None:
        pass
