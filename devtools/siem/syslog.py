"""A syslog listener over TCP (or TLS): RFC 6587 octet counting, RFC 5424 messages.

A frame is ``MSG-LEN SP SYSLOG-MSG`` where MSG-LEN is a positive decimal without leading
zeros (RFC 6587 3.4.1) and SYSLOG-MSG is exactly MSG-LEN octets. Each message must be
RFC 5424: ``<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA [SP MSG]`` with
PRI 0-191, header fields of printable US-ASCII within their lengths, a TIMESTAMP that is
``-`` or an RFC 3339 date-time with at most six fractional digits, and STRUCTURED-DATA
``-`` or bracketed elements. A broken frame or message is recorded in ``errors`` and the
connection is dropped (rsyslog does the same with a broken octet count). Each good
message's MSG is kept as a line (a UTF-8 byte-order mark, if any, removed).

When the sender closes its side, the listener reads to the end and closes its own: the
sender counts that close as the acknowledgement of everything it sent.
"""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from datetime import datetime

from devtools.siem.base import Listener

MAX_MESSAGE = 256 * 1024
_BOM = b"\xef\xbb\xbf"
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$")
# Field name -> maximum length (RFC 5424 section 6).
_FIELDS = (("hostname", 255), ("app_name", 48), ("procid", 128), ("msgid", 32))


@dataclass(frozen=True)
class SyslogMessage:
    pri: int
    timestamp: str
    hostname: str
    app_name: str
    procid: str
    msgid: str
    structured_data: str
    msg: bytes

    @property
    def facility(self) -> int:
        return self.pri // 8

    @property
    def severity(self) -> int:
        return self.pri % 8


class FrameError(ValueError):
    pass


def parse_message(data: bytes) -> SyslogMessage:
    """One RFC 5424 message. Raises FrameError with the reason."""
    match = re.match(rb"^<(\d{1,3})>1 ", data)
    if not match:
        raise FrameError("not an RFC 5424 message (<PRI>1 ...)")
    pri_text = match.group(1)
    pri = int(pri_text)
    if pri > 191 or (len(pri_text) > 1 and pri_text.startswith(b"0")):
        raise FrameError(f"PRI {pri_text!r} out of range")
    rest = data[match.end() :]
    values = []
    for _ in range(1 + len(_FIELDS)):  # TIMESTAMP, then the four fields
        field, sep, rest = rest.partition(b" ")
        if not sep or not field:
            raise FrameError("header ends early")
        values.append(field)
    timestamp = values[0].decode("ascii", "replace")
    if timestamp != "-":
        if not _RFC3339.match(timestamp):
            raise FrameError(f"TIMESTAMP {timestamp!r} is not RFC 3339")
        datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    fields = {}
    for (name, limit), raw in zip(_FIELDS, values[1:], strict=True):
        if len(raw) > limit or any(not 33 <= byte <= 126 for byte in raw):
            raise FrameError(f"{name.upper()} {raw[:40]!r} is not 1-{limit} printable characters")
        fields[name] = raw.decode("ascii")
    if rest.startswith(b"-"):
        sd, msg = "-", rest[1:]
    elif rest.startswith(b"["):
        end = rest.find(b"] ")
        if end < 0 and not rest.endswith(b"]"):
            raise FrameError("STRUCTURED-DATA is not closed")
        end = len(rest) - 1 if end < 0 else end
        sd, msg = rest[: end + 1].decode("utf-8", "replace"), rest[end + 1 :]
    else:
        raise FrameError("STRUCTURED-DATA missing")
    if msg and not msg.startswith(b" "):
        raise FrameError("no space before MSG")
    msg = msg[1:]
    if msg.startswith(_BOM):
        msg = msg[len(_BOM) :]
    return SyslogMessage(pri, timestamp, structured_data=sd, msg=msg, **fields)


class SyslogReceiver(Listener):
    def __init__(
        self, *, port: int = 0, tls: ssl.SSLContext | None = None, defer_checks: bool = False
    ) -> None:
        super().__init__(port=port, tls=tls)
        self.messages: list[SyslogMessage] = []
        # Take frames off the wire but parse the messages only in check() (the bench).
        self.defer_checks = defer_checks
        self.unparsed: list[bytes] = []
        # While set, connections are accepted but nothing is read (a receiver that hangs);
        # a down() then loses what was sent and unread, as a crash does.
        self.stall = threading.Event()

    @property
    def url(self) -> str:
        return f"syslog+{'tls' if self.tls is not None else 'tcp'}://localhost:{self.port}"

    def serve(self, sock: socket.socket) -> None:
        buffer = b""
        while True:
            while self.stall.is_set() and self.is_up:
                time.sleep(0.05)
            data = sock.recv(65536)
            if not data:
                break  # the sender closed its side: everything is read
            buffer += data
            try:
                buffer = self._frames(buffer)
            except FrameError as exc:
                self.error(str(exc))
                return
        if buffer:
            self.error(f"connection closed inside a frame ({len(buffer)} bytes left)")
            return
        if isinstance(sock, ssl.SSLSocket):
            with contextlib.suppress(ssl.SSLError, OSError):
                sock.unwrap()  # answer the sender's close_notify

    def _frames(self, buffer: bytes) -> bytes:
        """Take every complete frame off ``buffer``; return what is left."""
        while buffer:
            space = buffer.find(b" ", 0, 12)
            if space < 0:
                if len(buffer) >= 12 or not buffer.isdigit():
                    raise FrameError(f"bad octet count {buffer[:12]!r}")
                return buffer
            count = buffer[:space]
            if not count.isdigit() or count.startswith(b"0"):
                raise FrameError(f"bad octet count {count!r}")
            length = int(count)
            if length > MAX_MESSAGE:
                raise FrameError(f"message of {length} octets is over {MAX_MESSAGE}")
            end = space + 1 + length
            if len(buffer) < end:
                return buffer
            if self.defer_checks:
                with self.lock:
                    self.unparsed.append(buffer[space + 1 : end])
            else:
                self._take(parse_message(buffer[space + 1 : end]))
            buffer = buffer[end:]
        return buffer

    def _take(self, message: SyslogMessage) -> None:
        with self.lock:
            self.messages.append(message)
        self.keep([message.msg])

    def check(self) -> None:
        with self.lock:
            pending, self.unparsed = self.unparsed, []
        for data in pending:
            try:
                self._take(parse_message(data))
            except FrameError as exc:
                self.error(f"deferred check: {exc}")
