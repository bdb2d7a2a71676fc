"""An HTTP(S) endpoint for JSON Lines batches (see the package docstring).

Each request must be ``POST <path>`` with ``Content-Type: application/x-ndjson`` and
``Authorization: <scheme> <token>``; the body must be UTF-8 lines, each ending in a newline
and each a JSON object with an integer ``seq``. A request that breaks one of these is
refused (400, 401, 404, 405, 411, 413, 415) and nothing of it is kept. A good batch is kept
whole and answered ``200 {"text":"Success","code":0}`` (what Splunk's HEC answers).
"""

from __future__ import annotations

import json
import socket
import ssl
import time
from email.message import Message
from http.server import BaseHTTPRequestHandler
from typing import Any

from devtools.siem.base import Listener, _reset

MAX_BODY = 64 * 1024 * 1024


class HttpReceiver(Listener):
    def __init__(
        self,
        *,
        token: str = "siem-test-token",  # noqa: S107  (a stand-in's test token)
        scheme: str = "Bearer",
        path: str = "/ingest",
        port: int = 0,
        tls: ssl.SSLContext | None = None,
        max_body: int = MAX_BODY,
        defer_checks: bool = False,
    ) -> None:
        super().__init__(port=port, tls=tls)
        # Answer once the body is split into lines, and check each line only in check()
        # (a SIEM that queues first and parses later); for the bench's drain.
        self.defer_checks = defer_checks
        self.token = token
        self.scheme = scheme
        self.path = path
        self.max_body = max_body
        self.status: int | None = None  # answer this instead of accepting
        self.drop_answers = 0  # keep this many batches, then reset instead of answering
        self.delay = 0.0  # seconds to wait before answering
        self.batches: list[tuple[int, int]] = []  # (first seq, line count) per kept batch
        self.requests = 0

    @property
    def url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        host = "localhost" if self.tls is not None else "127.0.0.1"
        return f"{scheme}://{host}:{self.port}{self.path}"

    def check(self) -> None:
        with self.lock:
            body = b"".join(line + b"\n" for line in self.received)
        if body:
            _, problem = _parse(body)
            if problem:
                self.error(f"deferred check: {problem}")

    def serve(self, sock: socket.socket) -> None:
        receiver = self

        class Handler(_Handler):
            pass

        Handler.receiver = receiver
        Handler(sock, ("127.0.0.1", 0), None)  # type: ignore[arg-type]  # no server object


class _Handler(BaseHTTPRequestHandler):
    receiver: HttpReceiver
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self, status: int, text: str) -> None:
        body = json.dumps({"text": text, "code": 0 if status == 200 else status}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _refuse(self, status: int, text: str) -> None:
        self.receiver.error(f"{status} {text}")
        self.close_connection = status >= 400 and status not in (401, 403)
        self._answer(status, text)

    def do_GET(self) -> None:
        self._refuse(405, "use POST")

    def do_POST(self) -> None:
        receiver = self.receiver
        with receiver.lock:
            receiver.requests += 1
        if self.path.split("?", 1)[0] != receiver.path:
            self._refuse(404, f"no endpoint at {self.path.split('?', 1)[0]}")
            return
        length_text = self.headers.get("Content-Length")
        if length_text is None or not length_text.isdigit():
            self._refuse(411, "Content-Length required")
            return
        length = int(length_text)
        if length > receiver.max_body:
            self._refuse(413, f"body over {receiver.max_body} bytes")
            return
        body = self.rfile.read(length)
        if self.headers.get("Authorization") != f"{receiver.scheme} {receiver.token}":
            self._refuse(401, "invalid token")
            return
        content_type = Message()
        content_type["Content-Type"] = self.headers.get("Content-Type", "")
        if content_type.get_content_type() != "application/x-ndjson":
            self._refuse(
                415, f"expected application/x-ndjson, got {content_type.get_content_type()}"
            )
            return
        if receiver.status is not None:
            self._refuse(receiver.status, "refused by the test")
            return
        if receiver.defer_checks:
            problem = "" if body.endswith(b"\n") else "the last line does not end in a newline"
            lines = body[:-1].split(b"\n")
        else:
            lines, problem = _parse(body)
        if problem:
            self._refuse(400, problem)
            return
        if receiver.delay:
            time.sleep(receiver.delay)
        receiver.keep(lines)
        with receiver.lock:
            receiver.batches.append((int(json.loads(lines[0])["seq"]), len(lines)))
            drop = receiver.drop_answers > 0
            if drop:
                receiver.drop_answers -= 1
        if drop:
            # Kept, but the acknowledgement is lost: the sender must send it again.
            self.close_connection = True
            _reset(self.connection)
            return
        self._answer(200, "Success")


def _parse(body: bytes) -> tuple[list[bytes], str]:
    """The lines of a JSON Lines body, or a reason to refuse it.

    Every line must be one JSON object with an integer ``seq``. The lines are parsed in
    one go as the elements of a JSON array (JSON text holds no raw newline, so a line is
    one element unless it smuggles in a comma-separated second value: then the counts
    differ and the body is refused).
    """
    if not body:
        return [], "empty body"
    if not body.endswith(b"\n"):
        return [], "the last line does not end in a newline"
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return [], "not UTF-8"
    lines = body[:-1].split(b"\n")
    try:
        values = json.loads(b"[" + b",".join(lines) + b"]")
    except ValueError:
        values = None
    if not isinstance(values, list) or len(values) != len(lines):
        bad = next((n for n, line in enumerate(lines, 1) if not _is_json(line)), len(lines))
        return [], f"line {bad} is not JSON"
    for number, data in enumerate(values, start=1):
        if not isinstance(data, dict) or type(data.get("seq")) is not int:
            return [], f"line {number} is not an object with an integer seq"
    return lines, ""


def _is_json(line: bytes) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True
