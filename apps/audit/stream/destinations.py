"""Parse ``AUDIT_STREAM``: where the audit trail is streamed (docs/audit-stream.md).

Pure Python (no Django), so the settings module can refuse a bad value at start-up and the
audit app's system checks can re-validate the effective settings with the same rules.

The value is a comma-separated list of destinations, each one of:

* ``https://host[:port]/path[?query]``: batches of JSON Lines, POSTed (``http://`` only to a
  loopback host, for tests and a receiver on the same machine);
* ``syslog+tcp://host:port`` and ``syslog+tls://host:port``: RFC 5424 messages framed by
  octet counting (RFC 6587).

Credentials never go into the URL (``AUDIT_STREAM_TOKEN`` holds the HTTPS token): a URL
with a user or password is refused, and so is a query parameter whose name says it holds
one (``token``, ``key``, ...). A destination's **name** is its URL without the query: what
the admin, the logs and the database show. Two destinations may not share a name.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

__all__ = [
    "AUTH_SCHEMES",
    "Destination",
    "StreamConfigError",
    "is_loopback",
    "parse",
    "problems",
]

HTTPS = "https"
HTTP = "http"
SYSLOG_TCP = "syslog+tcp"
SYSLOG_TLS = "syslog+tls"
SCHEMES = (HTTPS, HTTP, SYSLOG_TCP, SYSLOG_TLS)
AUTH_SCHEMES = ("Bearer", "Splunk", "ApiKey")
# Query parameters that would put a credential into the settings' URL (and the logs).
_SECRET_PARAM = re.compile(r"(token|secret|password|passwd|key|auth|sig)", re.I)
_NAME_LIMIT = 300


class StreamConfigError(ValueError):
    """The stream configuration is invalid; the message is one readable sentence."""


@dataclass(frozen=True)
class Destination:
    """One configured destination. ``url`` is as configured (query included);
    ``name`` is the URL without its query, the destination's identity everywhere."""

    url: str
    scheme: str
    host: str
    port: int
    name: str

    @property
    def is_http(self) -> bool:
        return self.scheme in (HTTP, HTTPS)

    @property
    def is_tls(self) -> bool:
        return self.scheme in (HTTPS, SYSLOG_TLS)


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _port(parts: SplitResult, shown: str) -> int | None:
    try:
        return parts.port
    except ValueError:
        raise StreamConfigError(f"AUDIT_STREAM destination {shown!r} has an invalid port") from None


def _one(entry: str) -> Destination:
    parts = urlsplit(entry)
    scheme = parts.scheme.lower()
    # What errors show of the entry: never a user, password, query or fragment.
    shown = f"{scheme}://{parts.hostname or ''}{parts.path}" if scheme else "(no scheme)"
    if parts.username is not None or parts.password is not None:
        raise StreamConfigError(
            f"AUDIT_STREAM destination for host {parts.hostname!r} carries credentials in its "
            "URL; put the token in AUDIT_STREAM_TOKEN"
        )
    if scheme not in SCHEMES:
        raise StreamConfigError(
            f"AUDIT_STREAM destination {shown!r} is not https://, syslog+tcp:// or syslog+tls://"
        )
    host = parts.hostname or ""
    if not host:
        raise StreamConfigError(f"AUDIT_STREAM destination {shown!r} has no host")
    port = _port(parts, shown)
    if parts.fragment:
        raise StreamConfigError(f"AUDIT_STREAM destination {shown!r} has a #fragment")
    for pair in parts.query.split("&") if parts.query else []:
        key = pair.partition("=")[0]
        if _SECRET_PARAM.search(key):
            raise StreamConfigError(
                f"AUDIT_STREAM destination for host {host!r} has a query parameter {key!r} that "
                "looks like a credential; put the token in AUDIT_STREAM_TOKEN"
            )
    if scheme in (SYSLOG_TCP, SYSLOG_TLS):
        if port is None:
            raise StreamConfigError(f"AUDIT_STREAM destination {shown!r} needs a port")
        if parts.path not in ("", "/") or parts.query:
            raise StreamConfigError(
                f"AUDIT_STREAM destination {shown!r}: a syslog destination is host:port only"
            )
        name = f"{scheme}://{parts.netloc}"
    else:
        port = port or (443 if scheme == HTTPS else 80)
        name = f"{scheme}://{parts.netloc}{parts.path or '/'}"
    if len(name) > _NAME_LIMIT:
        raise StreamConfigError(f"AUDIT_STREAM destination {name[:60]!r}... is too long")
    return Destination(url=entry, scheme=scheme, host=host, port=port, name=name)


def parse(value: str | list[str] | tuple[str, ...]) -> tuple[Destination, ...]:
    """The destinations of ``value`` (the setting's text, or a list of URLs), in order.

    Raises ``StreamConfigError`` for an invalid entry or two entries with one name.
    """
    entries = value.split(",") if isinstance(value, str) else list(value)
    if isinstance(value, str) and not value.strip():
        return ()
    found: list[Destination] = []
    for raw in entries:
        entry = raw.strip()
        if not entry:
            raise StreamConfigError("AUDIT_STREAM has an empty entry (two commas in a row?)")
        destination = _one(entry)
        if any(d.name == destination.name for d in found):
            raise StreamConfigError(f"AUDIT_STREAM names {destination.name} twice")
        found.append(destination)
    return tuple(found)


def problems(
    destinations: tuple[Destination, ...],
    *,
    production: bool,
    token: str,
    auth_scheme: str,
    ca_file: str,
    batch: int,
    batch_bytes: int,
    timeout: float,
    retry_base: float,
    retry_max: float,
) -> list[str]:
    """What is wrong with the stream settings, one sentence each (empty: nothing).

    Plain ``http://`` and ``syslog+tcp://`` send the trail and (for HTTP) the token in clear
    text: allowed to a loopback host, and to other hosts only outside production.
    """
    found: list[str] = []
    for d in destinations:
        clear = d.scheme in (HTTP, SYSLOG_TCP)
        if clear and not is_loopback(d.host) and production:
            safe = "https://" if d.scheme == HTTP else "syslog+tls://"
            found.append(
                f"AUDIT_STREAM destination {d.name} sends the trail unencrypted to a host that "
                f"is not loopback; use {safe}"
            )
    if any(d.is_http for d in destinations) and not token:
        found.append("AUDIT_STREAM has an HTTPS destination but AUDIT_STREAM_TOKEN is not set")
    if auth_scheme not in AUTH_SCHEMES:
        found.append(f"AUDIT_STREAM_AUTH_SCHEME must be one of {', '.join(AUTH_SCHEMES)}")
    if ca_file and not os.path.isfile(ca_file):
        found.append(f"AUDIT_STREAM_CA_FILE={ca_file} is not a readable file")
    if not 1 <= batch <= 100_000:
        found.append("AUDIT_STREAM_BATCH must be between 1 and 100000 entries")
    if not 1024 <= batch_bytes <= 256 * 1024 * 1024:
        found.append("AUDIT_STREAM_BATCH_BYTES must be between 1024 and 268435456")
    if not 0 < timeout <= 300:
        found.append("AUDIT_STREAM_TIMEOUT_SECONDS must be above 0 and at most 300")
    if not 0 < retry_base <= retry_max:
        found.append(
            "AUDIT_STREAM_RETRY_BASE_SECONDS must be above 0 and at most "
            "AUDIT_STREAM_RETRY_MAX_SECONDS"
        )
    elif retry_max > 3600:
        found.append("AUDIT_STREAM_RETRY_MAX_SECONDS must be at most 3600")
    return found
