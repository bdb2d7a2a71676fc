"""Sending a batch of export lines to one destination, and what counts as delivered.

* **HTTPS**: one POST per batch, the lines as the body (``application/x-ndjson``),
  ``Authorization: <scheme> <AUDIT_STREAM_TOKEN>``. Any 2xx acknowledges the batch.
  Redirects are not followed (the token would follow them). 401, 403, 413 and the other
  4xx but 408/425/429 are **refusals**: the destination will not take the batch as things
  are, so an operator must act; 408, 425, 429, 5xx, timeouts and connection errors are
  **outages**, retried with backoff. A 413 first halves the batch, down to one entry.
* **syslog over TCP or TLS**: each entry is one RFC 5424 message (PRI 110: facility 13
  "log audit", severity informational; APP-NAME ``jitportal``; MSGID the action; no
  structured data; the JSON line, without its newline, as MSG) in an RFC 6587
  octet-counting frame. Plain TCP has no acknowledgement of its own, so each batch goes
  over a connection of its own, which the portal then closes for writing: a receiver that
  read everything closes its side in turn, and that close is the acknowledgement. A reset
  instead (the receiver died with unread data) is an outage and the batch is sent again.
  A receiver that neither closes nor resets within the timeout is counted as delivered only
  when its TCP stack acknowledged every byte (Linux ``SIOCOUTQ`` drained to zero).

Error messages are one line, name the destination by its name (never the query), and
never carry the token.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import logging
import re
import socket
import ssl
import struct
import termios
from dataclasses import dataclass

import requests

from .config import Destination, Settings

log = logging.getLogger(__name__)

NDJSON = "application/x-ndjson"
SYSLOG_PRI = b"<110>"  # facility 13 (log audit) * 8 + severity 6 (informational)
APP_NAME = b"jitportal"
_ERROR_LIMIT = 300
# HTTP statuses that mean "later", not "never": every other 4xx is a refusal.
_TRANSIENT_4XX = frozenset({408, 425, 429})


class DeliveryError(Exception):
    """A batch was not acknowledged. ``refused``: the destination said no (an operator must
    act); otherwise an outage, retried with backoff. The message is safe to show."""

    def __init__(self, message: str, *, refused: bool, retry_after: float | None = None) -> None:
        super().__init__(message[:_ERROR_LIMIT])
        self.refused = refused
        self.retry_after = retry_after


class TooLarge(DeliveryError):
    """HTTP 413: the sender halves the batch before it calls this a refusal."""


@dataclass(frozen=True)
class Batch:
    """``count`` consecutive entries from ``first_seq``: their export lines (UTF-8, each
    ending in a newline), as one piece of bytes."""

    first_seq: int
    count: int
    data: bytes

    @property
    def last_seq(self) -> int:
        return self.first_seq + self.count - 1

    @property
    def lines(self) -> list[bytes]:
        """Each line, with its newline."""
        return self.data.splitlines(keepends=True)


def _one_line(text: str, secret: str = "") -> str:
    if secret:
        text = text.replace(secret, "[REDACTED]")
    return " ".join(text.split())[:_ERROR_LIMIT]


def tls_context(cfg: Settings) -> ssl.SSLContext:
    """Verify the destination's certificate and host name, against AUDIT_STREAM_CA_FILE
    when it is set, else the system's trusted CAs; TLS 1.2 at least."""
    context = ssl.create_default_context(cafile=cfg.ca_file or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class HttpTransport:
    def __init__(self, destination: Destination, cfg: Settings) -> None:
        self.destination = destination
        self.cfg = cfg
        self.session = requests.Session()
        self.session.verify = cfg.ca_file or True
        self.session.trust_env = False  # no proxy from the environment sees the token
        self.session.headers.update(
            {
                "Content-Type": NDJSON,
                "Authorization": f"{cfg.auth_scheme} {cfg.token}",
                "User-Agent": "jitportal-audit-stream",
            }
        )

    def send(self, batch: Batch) -> None:
        body = batch.data
        name = self.destination.name
        try:
            response = self.session.post(
                self.destination.url,
                data=body,
                headers={
                    "X-Jitportal-First-Seq": str(batch.first_seq),
                    "X-Jitportal-Last-Seq": str(batch.last_seq),
                },
                timeout=self.cfg.timeout,
                allow_redirects=False,
            )
        except requests.exceptions.SSLError as exc:
            raise DeliveryError(
                f"{name}: TLS failed ({_one_line(str(exc.__context__ or exc), self.cfg.token)})",
                refused=True,
            ) from None
        except requests.exceptions.Timeout:
            raise DeliveryError(
                f"{name}: no answer within {self.cfg.timeout:g} s", refused=False
            ) from None
        except requests.exceptions.RequestException as exc:
            raise DeliveryError(
                f"{name}: {type(exc).__name__} ({_reason(exc)})", refused=False
            ) from None
        status = response.status_code
        if 200 <= status < 300:
            return
        snippet = _one_line(response.text[:200], self.cfg.token)
        what = f"{name} answered {status}" + (f": {snippet}" if snippet else "")
        if status == 413:
            raise TooLarge(what, refused=True)
        if 300 <= status < 400:
            raise DeliveryError(
                f"{name} answered {status} (a redirect); set the final URL in AUDIT_STREAM",
                refused=True,
            )
        if status in (401, 403):
            raise DeliveryError(
                f"{what} (the token in AUDIT_STREAM_TOKEN was refused)", refused=True
            )
        if 400 <= status < 500 and status not in _TRANSIENT_4XX:
            raise DeliveryError(what, refused=True)
        raise DeliveryError(what, refused=False, retry_after=_retry_after(response))

    def close(self) -> None:
        self.session.close()


def _reason(exc: Exception) -> str:
    """The innermost cause, e.g. "Connection refused", without URLs or headers."""
    inner: BaseException = exc
    while inner.__context__ is not None and inner.__context__ is not inner:
        inner = inner.__context__
    text = getattr(inner, "strerror", None) or type(inner).__name__
    return str(text)


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


# --- syslog -------------------------------------------------------------------------------


# The export line's first keys are seq, created_at, actor_id, actor_label, action (the
# documented column order). A JSON string cannot hold an unescaped quote, so the first
# ``,"action":"`` in a line is the key itself, never text inside an earlier value.
_CREATED = re.compile(rb'^\{"seq":\d+,"created_at":"([0-9T:.+-]{1,40})"')
_ACTION = re.compile(rb',"action":"([^"\\]{1,64})"')


@functools.lru_cache(maxsize=512)
def _msgid(action: bytes) -> bytes:
    """RFC 5424 MSGID: 1 to 32 printable US-ASCII characters."""
    cleaned = bytes(b for b in action if 33 <= b <= 126)[:32]
    return cleaned or b"-"


def syslog_frame(line: bytes, *, hostname: bytes) -> bytes:
    """One entry as an octet-counted RFC 5424 message: ``LEN SP <110>1 TIMESTAMP HOSTNAME
    jitportal - MSGID - MSG``. TIMESTAMP (the entry's ``created_at``) and MSGID (its
    ``action``) are read from the export line itself, and MSG is that line without its
    newline (UTF-8, no byte-order mark, so the receiver's MSG is the line exactly)."""
    created = _CREATED.match(line)
    action = _ACTION.search(line)
    if created is None or action is None:
        raise ValueError(f"not an export line: {line[:60]!r}")
    message = b"%s1 %s %s %s - %s - %s" % (
        SYSLOG_PRI,
        created.group(1),
        hostname,
        APP_NAME,
        _msgid(action.group(1)),
        line.rstrip(b"\n"),
    )
    return b"%d %s" % (len(message), message)


def _unacknowledged_bytes(sock: socket.socket) -> int | None:
    """Bytes the peer's TCP stack has not acknowledged yet (Linux), or None if unknown."""
    try:
        raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, struct.pack("i", 0))
    except OSError:
        return None
    return int(struct.unpack("i", raw)[0])


class SyslogTransport:
    def __init__(self, destination: Destination, cfg: Settings) -> None:
        self.destination = destination
        self.cfg = cfg
        self.context = tls_context(cfg) if destination.is_tls else None

    def payload(self, batch: Batch) -> bytes:
        hostname = self.cfg.hostname.encode()
        return b"".join(syslog_frame(line, hostname=hostname) for line in batch.lines)

    def _connect(self) -> socket.socket:
        name = self.destination.name
        try:
            sock = socket.create_connection(
                (self.destination.host, self.destination.port), timeout=self.cfg.timeout
            )
        except TimeoutError:
            raise DeliveryError(
                f"{name}: no connection within {self.cfg.timeout:g} s", refused=False
            ) from None
        except OSError as exc:
            raise DeliveryError(
                f"{name}: {exc.strerror or type(exc).__name__}", refused=False
            ) from None
        if self.context is None:
            return sock
        try:
            return self.context.wrap_socket(sock, server_hostname=self.destination.host)
        except ssl.SSLCertVerificationError as exc:
            sock.close()
            raise DeliveryError(
                f"{name}: TLS certificate not trusted ({exc.verify_message})", refused=True
            ) from None
        except (ssl.SSLError, OSError) as exc:
            sock.close()
            raise DeliveryError(
                f"{name}: TLS handshake failed ({_one_line(str(exc))})", refused=False
            ) from None

    def send(self, batch: Batch) -> None:
        payload = self.payload(batch)
        sock = self._connect()
        try:
            sock.sendall(payload)
            self._await_close(sock)
        except DeliveryError:
            raise
        except TimeoutError:
            raise DeliveryError(
                f"{self.destination.name}: sending timed out after {self.cfg.timeout:g} s",
                refused=False,
            ) from None
        except OSError as exc:
            raise DeliveryError(
                f"{self.destination.name}: connection lost ({exc.strerror or type(exc).__name__});"
                " the batch will be sent again",
                refused=False,
            ) from None
        finally:
            with contextlib.suppress(OSError):
                sock.close()

    def _await_close(self, sock: socket.socket) -> None:
        """Wait for the receiver to close its side after reading everything (see the module
        docstring). Raises OSError on a reset, which the caller reports as an outage."""
        if isinstance(sock, ssl.SSLSocket):
            try:
                # Sends close_notify and waits for the receiver's; a receiver that closes
                # the connection without one has read to the end as well.
                sock = sock.unwrap()
            except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
                return
            except TimeoutError:
                self._timed_out(sock)
                return
            except ssl.SSLError as exc:
                raise ConnectionResetError(_one_line(str(exc))) from None
        else:
            sock.shutdown(socket.SHUT_WR)
        try:
            while sock.recv(4096):
                pass  # a syslog receiver sends nothing; whatever it sends is ignored
        except TimeoutError:
            self._timed_out(sock)

    def _timed_out(self, sock: socket.socket) -> None:
        left = _unacknowledged_bytes(sock)
        if left == 0:
            log.warning(
                "%s did not close the connection; counted as delivered (TCP acknowledged it all)",
                self.destination.name,
            )
            return
        raise DeliveryError(
            f"{self.destination.name}: the receiver neither closed the connection nor "
            f"acknowledged every byte within {self.cfg.timeout:g} s",
            refused=False,
        )

    def close(self) -> None:
        pass


def transport_for(destination: Destination, cfg: Settings) -> HttpTransport | SyslogTransport:
    if destination.is_http:
        return HttpTransport(destination, cfg)
    return SyslogTransport(destination, cfg)
