"""HTTP/1.1 relay mechanics for the dev sign-in proxy: header filtering and body streaming.

Kept apart from the proxy's routes so each part stays small; nothing here knows about
identities or cookies beyond stripping the proxy's own.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from email.message import Message
from io import BufferedIOBase

CHUNK_BYTES = 64 * 1024
ASSERTION_HEADER = "X-Pomerium-Jwt-Assertion"
# Cookies named like this belong to the proxy; like Pomerium's own session cookie they
# never reach the app.
PROXY_COOKIE_PREFIX = "_demo_"

# RFC 9110 section 7.6.1: meaningful for one connection only, never relayed.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
# Set by the proxy itself; a client's copies are never trusted or relayed. ("expect" is
# answered by the proxy's own HTTP server.)
PROXY_SET_HEADERS = frozenset(
    {"host", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded", "expect"}
)


def parse_cookies(header_values: Iterable[str]) -> list[tuple[str, str]]:
    """``(name, value)`` pairs from Cookie headers, in order, without judging the values."""
    cookies = []
    for header in header_values:
        for part in header.split(";"):
            name, sep, value = part.strip().partition("=")
            if sep and name:
                cookies.append((name, value))
    return cookies


def connection_tokens(headers: Message) -> set[str]:
    """Header names a ``Connection`` header marks as hop-by-hop for this message."""
    return {
        token.strip().lower()
        for value in headers.get_all("Connection") or []
        for token in value.split(",")
    }


def is_hop_by_hop(name: str, tokens: set[str]) -> bool:
    lower = name.lower()
    return lower in HOP_BY_HOP or lower in tokens


def upstream_headers(
    incoming: Message, *, client_ip: str, fallback_host: str, assertion: str
) -> list[tuple[str, str]]:
    """The headers to send upstream: the client's, minus anything a client must not set.

    Any ``X-Pomerium-*`` header from the client is dropped (Pomerium overwrites them too),
    so the only assertion the app sees is ``assertion``. The Host header is kept as the
    browser sent it, because the portal builds absolute URLs and CSRF origins from it.
    """
    tokens = connection_tokens(incoming)
    headers: list[tuple[str, str]] = []
    for name, value in incoming.items():
        lower = name.lower()
        if (
            is_hop_by_hop(lower, tokens)
            or lower in PROXY_SET_HEADERS
            or lower.startswith("x-pomerium-")
        ):
            continue
        if lower == "cookie":
            kept = [
                f"{n}={v}"
                for n, v in parse_cookies([value])
                if not n.startswith(PROXY_COOKIE_PREFIX)
            ]
            if not kept:
                continue
            value = "; ".join(kept)
        headers.append((name, value))
    host = incoming.get("Host") or fallback_host
    headers += [
        ("Host", host),
        ("X-Forwarded-For", client_ip),
        ("X-Forwarded-Proto", "http"),
        ("X-Forwarded-Host", host),
        (ASSERTION_HEADER, assertion),
    ]
    return headers


def content_length(headers: Message) -> int | None:
    """The declared body length: 0 when absent, ``None`` when malformed."""
    raw = headers.get("Content-Length")
    if raw is None:
        return 0
    try:
        length = int(raw)
    except ValueError:
        return None
    return length if length >= 0 else None


def request_body(headers: Message, rfile: BufferedIOBase) -> tuple[Iterator[bytes] | None, bool]:
    """The client's body as a lazy stream of chunks, and whether it must go on chunked.

    Raises ``ValueError`` for a malformed Content-Length; malformed chunk framing raises
    ``ValueError`` while the stream is consumed.
    """
    if "chunked" in headers.get("Transfer-Encoding", "").lower():
        return read_chunked(rfile), True
    length = content_length(headers)
    if length is None:
        raise ValueError("bad Content-Length")
    if length == 0:
        return None, False
    return read_exactly(rfile, length), False


def read_exactly(rfile: BufferedIOBase, length: int) -> Iterator[bytes]:
    remaining = length
    while remaining:
        chunk = rfile.read(min(CHUNK_BYTES, remaining))
        if not chunk:
            raise OSError("client closed the connection mid-body")
        remaining -= len(chunk)
        yield chunk


def read_chunked(rfile: BufferedIOBase) -> Iterator[bytes]:
    while True:
        size_line = rfile.readline(1024)
        size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            # Skip trailers up to the blank line that ends the body.
            while rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                pass
            return
        yield from read_exactly(rfile, size)
        rfile.readline(8)  # the CRLF after each chunk


def chunk_frame(chunk: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(chunk), chunk)


LAST_CHUNK = b"0\r\n\r\n"
