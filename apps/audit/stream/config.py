"""The stream's settings, read at call time (a test's override is seen at once)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from apps.audit.stream import destinations as audit_stream
from apps.audit.stream.destinations import Destination

__all__ = ["Destination", "Settings", "current", "destinations", "enabled", "problems"]


@dataclass(frozen=True)
class Settings:
    token: str
    auth_scheme: str
    ca_file: str
    batch: int
    batch_bytes: int
    timeout: float
    retry_base: float
    retry_max: float
    alert_after: int
    hostname: str


def destinations() -> tuple[Destination, ...]:
    """The configured destinations, in the order ``AUDIT_STREAM`` names them."""
    return audit_stream.parse(getattr(settings, "AUDIT_STREAM", ()) or ())


def enabled() -> bool:
    return bool(getattr(settings, "AUDIT_STREAM", ()))


def _hostname() -> str:
    """The syslog HOSTNAME field: the portal's public host (RFC 5424: printable ASCII)."""
    host = urlsplit(settings.PORTAL_URL).hostname or ""
    host = "".join(ch for ch in host if 33 <= ord(ch) <= 126)[:255]
    return host or "-"


def current() -> Settings:
    return Settings(
        token=settings.AUDIT_STREAM_TOKEN,
        auth_scheme=settings.AUDIT_STREAM_AUTH_SCHEME,
        ca_file=settings.AUDIT_STREAM_CA_FILE,
        batch=int(settings.AUDIT_STREAM_BATCH),
        batch_bytes=int(settings.AUDIT_STREAM_BATCH_BYTES),
        timeout=float(settings.AUDIT_STREAM_TIMEOUT_SECONDS),
        retry_base=float(settings.AUDIT_STREAM_RETRY_BASE_SECONDS),
        retry_max=float(settings.AUDIT_STREAM_RETRY_MAX_SECONDS),
        alert_after=int(settings.AUDIT_STREAM_ALERT_AFTER_SECONDS),
        hostname=_hostname(),
    )


def problems() -> list[str]:
    """What is wrong with the effective settings (the system checks report these)."""
    try:
        found = destinations()
    except audit_stream.StreamConfigError as exc:
        return [str(exc)]
    cfg = current()
    return audit_stream.problems(
        found,
        production=not settings.DEBUG,
        token=cfg.token,
        auth_scheme=cfg.auth_scheme,
        ca_file=cfg.ca_file,
        batch=cfg.batch,
        batch_bytes=cfg.batch_bytes,
        timeout=cfg.timeout,
        retry_base=cfg.retry_base,
        retry_max=cfg.retry_max,
    )
