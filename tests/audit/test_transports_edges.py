"""The audit stream's transports at their edges, over real sockets: what each answer or
failure of a destination means (refused: an operator must act; outage: retried), said in
one line that never carries the token."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

import pytest

from apps.audit.stream.config import Settings
from apps.audit.stream.destinations import parse
from apps.audit.stream.transports import (
    Batch,
    DeliveryError,
    HttpTransport,
    SyslogTransport,
    TooLarge,
    _unacknowledged_bytes,
    syslog_frame,
    transport_for,
)

TOKEN = "stream-secret-token"
LINE = (
    b'{"seq":1,"created_at":"2026-09-01T09:00:00+00:00","actor_id":null,'
    b'"actor_label":"x","action":"grant.created"}\n'
)
BATCH = Batch(first_seq=1, count=1, data=LINE)


def cfg(timeout: float = 5.0) -> Settings:
    return Settings(
        token=TOKEN,
        auth_scheme="Bearer",
        ca_file="",
        batch=100,
        batch_bytes=1 << 20,
        timeout=timeout,
        retry_base=1.0,
        retry_max=60.0,
        alert_after=3600,
        hostname="jit.example.com",
    )


class Answer:
    """An HTTP destination that answers every POST with one status, headers and body."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        answer = self
        self.release = threading.Event()
        self.hold = False

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if answer.hold:
                    answer.release.wait(10)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/ingest"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def answer() -> Iterator[Any]:
    started: list[Answer] = []

    def make(status: int, headers: dict[str, str] | None = None, body: bytes = b"") -> Answer:
        server = Answer(status, headers or {}, body)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


def http_send(url: str, timeout: float = 5.0) -> DeliveryError:
    [destination] = parse([url])
    transport = transport_for(destination, cfg(timeout))
    assert isinstance(transport, HttpTransport)
    try:
        with pytest.raises(DeliveryError) as caught:
            transport.send(BATCH)
    finally:
        transport.close()
    assert TOKEN not in str(caught.value)
    return caught.value


# ------------------------------------------------------------------------------------ HTTP


def test_a_redirect_is_refused_and_not_followed(answer: Any) -> None:
    server = answer(302, {"Location": "http://elsewhere.invalid/"})
    error = http_send(server.url)
    assert error.refused
    assert str(error) == (
        f"{server.url} answered 302 (a redirect); set the final URL in AUDIT_STREAM"
    )


def test_a_client_error_is_a_refusal_with_the_answer_and_no_token(answer: Any) -> None:
    server = answer(400, body=f"bad line\n  near {TOKEN}".encode())
    error = http_send(server.url)
    assert error.refused and not isinstance(error, TooLarge)
    assert str(error) == f"{server.url} answered 400: bad line near [REDACTED]"


@pytest.mark.parametrize(
    ("status", "retry_after", "expected"),
    [
        (503, "12", 12.0),
        (429, "-3", 0.0),
        (503, "Wed, 21 Oct 2026 07:28:00 GMT", None),  # a date: not read, backoff instead
        (500, None, None),
        (408, None, None),
    ],
)
def test_outages_are_retried_honouring_retry_after_in_seconds(
    answer: Any, status: int, retry_after: str | None, expected: float | None
) -> None:
    server = answer(status, {"Retry-After": retry_after} if retry_after else {})
    error = http_send(server.url)
    assert not error.refused
    assert error.retry_after == expected
    assert str(error).startswith(f"{server.url} answered {status}")


def test_tls_to_a_plain_http_listener_is_a_refusal(answer: Any) -> None:
    server = answer(200)
    error = http_send(server.url.replace("http://", "https://"))
    assert error.refused
    assert str(error).startswith(f"{server.url.replace('http://', 'https://')}: TLS failed (")


def test_a_destination_that_never_answers_is_an_outage(answer: Any) -> None:
    server = answer(200)
    server.hold = True
    error = http_send(server.url, timeout=0.3)
    assert not error.refused
    assert str(error) == f"{server.url}: no answer within 0.3 s"


# ---------------------------------------------------------------------------------- syslog


def test_a_line_that_is_not_an_export_line_is_never_framed() -> None:
    with pytest.raises(ValueError, match="not an export line"):
        syslog_frame(b'{"action":"grant.created"}\n', hostname=b"h")
    with pytest.raises(ValueError, match="not an export line"):
        syslog_frame(b'{"seq":1,"created_at":"2026-09-01T09:00:00+00:00"}\n', hostname=b"h")


def test_a_msgid_keeps_only_printable_ascii() -> None:
    line = LINE.replace(b"grant.created", b"\x01\x02")
    frame = syslog_frame(line, hostname=b"h")
    assert b" jitportal - - - " in frame


class Listener:
    """A TCP listener whose one connection is handled by ``behave(conn)``."""

    def __init__(self, behave: Any) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.received = b""
        self.done = threading.Event()

        def run() -> None:
            conn, _ = self.sock.accept()
            with conn:
                behave(self, conn)
            self.done.set()

        threading.Thread(target=run, daemon=True).start()

    def close(self) -> None:
        self.sock.close()


def read_all_then(listener: Listener, conn: socket.socket, then: str) -> None:
    conn.settimeout(5)
    while chunk := conn.recv(65536):
        listener.received += chunk
    if then == "talk":
        conn.sendall(b"thanks\n")
    elif then == "wait":
        listener.done.wait(3)


def syslog(port: int, scheme: str = "syslog+tcp", timeout: float = 5.0) -> SyslogTransport:
    [destination] = parse([f"{scheme}://127.0.0.1:{port}"])
    transport = transport_for(destination, cfg(timeout))
    assert isinstance(transport, SyslogTransport)
    return transport


def test_a_receiver_that_answers_before_closing_still_acknowledges() -> None:
    listener = Listener(lambda lst, conn: read_all_then(lst, conn, "talk"))
    try:
        syslog(listener.port).send(BATCH)
        assert listener.done.wait(5)
        assert listener.received == syslog_frame(LINE, hostname=b"jit.example.com")
    finally:
        listener.close()


def test_a_receiver_that_reads_all_but_never_closes_counts_as_delivered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def keep_open(lst: Listener, conn: socket.socket) -> None:
        conn.settimeout(5)
        lst.received = conn.recv(65536)
        lst.done.wait(5)  # never closes while the sender waits

    listener = Listener(keep_open)
    try:
        with caplog.at_level(logging.WARNING, logger="apps.audit.stream.transports"):
            syslog(listener.port, timeout=0.3).send(BATCH)
        assert listener.received.endswith(LINE.rstrip(b"\n"))
        assert [r.getMessage() for r in caplog.records] == [
            f"syslog+tcp://127.0.0.1:{listener.port} did not close the connection; counted "
            "as delivered (TCP acknowledged it all)"
        ]
    finally:
        listener.done.set()
        listener.close()


def test_a_tls_handshake_with_a_plain_listener_is_an_outage() -> None:
    def hang_up(lst: Listener, conn: socket.socket) -> None:
        conn.settimeout(5)
        conn.recv(4096)  # the ClientHello, then a plain close

    listener = Listener(hang_up)
    try:
        transport = syslog(listener.port, scheme="syslog+tls")
        with pytest.raises(DeliveryError) as caught:
            transport.send(BATCH)
        assert not caught.value.refused
        assert str(caught.value).startswith(
            f"syslog+tls://127.0.0.1:{listener.port}: TLS handshake failed ("
        )
    finally:
        listener.close()


def test_unacknowledged_bytes_are_unknown_where_the_kernel_cannot_tell() -> None:
    sock = socket.socket()
    try:
        assert _unacknowledged_bytes(sock) == 0
    finally:
        sock.close()
    read_end, write_end = os.pipe()
    try:
        pipe = SimpleNamespace(fileno=lambda: write_end)
        assert _unacknowledged_bytes(pipe) is None  # type: ignore[arg-type]
    finally:
        os.close(read_end)
        os.close(write_end)
