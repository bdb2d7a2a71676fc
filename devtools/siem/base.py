"""What both receivers share: a loopback listener on a fixed port that can go down and come
back (a crash and a restart), the lines received, and the copy a receiver keeps."""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any


def _reset(sock: socket.socket) -> None:
    """Close with a reset (SO_LINGER 0), as the kernel does when a process dies."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class Listener:
    """Accepts connections on 127.0.0.1:``port`` and hands each to ``serve`` in a thread.

    ``tls`` (a server-side ``ssl.SSLContext``) wraps each accepted connection.
    """

    def __init__(self, *, port: int = 0, tls: ssl.SSLContext | None = None) -> None:
        self.port = port
        self.tls = tls
        self._server: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.lock = threading.Lock()  # guards what subclasses record
        self.received: list[bytes] = []  # every line, in arrival order, repeats included
        self.errors: list[str] = []
        self.connections = 0

    # --- life cycle ------------------------------------------------------------------

    def start(self) -> Any:
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(64)
        self.port = server.getsockname()[1]
        self._server = server
        self._thread = threading.Thread(target=self._accept, args=(server,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            with contextlib.suppress(OSError):
                server.shutdown(socket.SHUT_RDWR)
            server.close()
        with self._lock:
            open_now = list(self._connections)
            self._connections.clear()
        for conn in open_now:
            _reset(conn)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def down(self) -> None:
        """A crash: the port refuses connections and open ones are reset, unread data lost."""
        self.stop()

    def up(self) -> None:
        """The restart, on the same port."""
        if self._server is None:
            self.start()

    @property
    def is_up(self) -> bool:
        return self._server is not None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- connections ---------------------------------------------------------------

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            # Answers go out at once, as real servers send them (no Nagle wait for the
            # ACK of an earlier segment, which a client may delay by 40 ms).
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._connections.add(conn)
                self.connections += 1
            threading.Thread(target=self._serve_one, args=(conn,), daemon=True).start()

    def _serve_one(self, conn: socket.socket) -> None:
        sock: socket.socket = conn
        try:
            if self.tls is not None:
                conn.settimeout(10)
                try:
                    sock = self.tls.wrap_socket(conn, server_side=True)
                except (ssl.SSLError, OSError) as exc:
                    self.error(f"TLS handshake failed: {exc}")
                    return
                with self._lock:
                    self._connections.add(sock)
            sock.settimeout(None)
            self.serve(sock)
        except OSError:
            pass  # reset by down(), or by the sender
        finally:
            with self._lock:
                self._connections.discard(conn)
                self._connections.discard(sock)
            with contextlib.suppress(OSError):
                sock.close()

    def serve(self, sock: socket.socket) -> None:
        raise NotImplementedError

    # --- what was received -----------------------------------------------------------

    def error(self, text: str) -> None:
        with self.lock:
            self.errors.append(text)

    def check(self) -> None:
        """Run the checks a receiver with ``defer_checks`` skipped while receiving."""

    def keep(self, lines: list[bytes]) -> None:
        with self.lock:
            self.received.extend(lines)

    def unique_lines(self) -> list[bytes]:
        """One line per ``seq``, in ``seq`` order: the copy of a receiver that drops repeats.

        A repeat must be byte-for-byte the line first received for its ``seq``; one that is
        not is recorded in ``errors``.
        """
        by_seq: dict[int, bytes] = {}
        with self.lock:
            lines = list(self.received)
        for line in lines:
            seq = int(json.loads(line)["seq"])
            first = by_seq.setdefault(seq, line)
            if first != line:
                self.error(f"seq {seq} repeated with different content")
        return [by_seq[seq] for seq in sorted(by_seq)]

    def seqs(self) -> list[int]:
        """The ``seq`` of every line received, in arrival order (repeats included)."""
        with self.lock:
            lines = list(self.received)
        return [int(json.loads(line)["seq"]) for line in lines]

    def write_jsonl(self, path: Path) -> Path:
        path.write_bytes(b"".join(line + b"\n" for line in self.unique_lines()))
        return path

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.02)
        return predicate()

    def wait_for_seq(self, seq: int, timeout: float = 30.0) -> bool:
        """Until an entry with ``seq`` (or a later one) has arrived."""
        return self.wait_for(lambda: bool(self.seqs()) and max(self.seqs()) >= seq, timeout)
