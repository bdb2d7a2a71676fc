"""The stored sessions: one Pomerium session token per portal origin, sent only there.

A token replays at the portal it came from, so it must never reach another server: it is
stored under its portal's origin (scheme, host and port) and ``Api`` sends it only to that
origin. ``--url`` or ``JIT_URL`` naming another portal finds no session there (run
``jit login`` for it) instead of borrowing one. Plain ``http://`` is refused except to
this machine (the demo), where nothing crosses a network.

The file (``session.json``, mode 0600 in a 0700 directory)::

    {"version": 2, "current": "https://jit.example.com:443",
     "sessions": {"https://jit.example.com:443": {"url": "https://jit.example.com",
                                                   "token": "<jwt>"}}}

``current`` is the origin commands use without ``--url``: the last ``jit login``. A file
from jit before 0.2 (``{"url", "token"}``) is read as that one session and written in this
shape by the next ``jit login`` or ``jit logout``.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .core import USAGE, fail

FILE_VERSION = 2
DEFAULT_PORTS = {"http": 80, "https": 443}
_URL = re.compile(r"^https?://[^/\s?#]+(/[^\s?#]*)?$", re.IGNORECASE)


def config_dir() -> Path:
    """``$XDG_CONFIG_HOME/jit`` (default ``~/.config/jit``); ``%APPDATA%\\jit`` on Windows."""
    if os.name == "nt" and os.environ.get("APPDATA"):
        return Path(os.environ["APPDATA"]) / "jit"
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "jit"


def config_path() -> Path:
    return config_dir() / "session.json"


# --- Portal URLs and their origins -----------------------------------------------------------


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address (127.0.0.0/8, ::1): this machine."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def origin(url: str) -> str:
    """``scheme://host:port`` of a URL ``normalise_url`` accepted, the port always written."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port or DEFAULT_PORTS.get(scheme, 0)
    return f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"


def normalise_url(url: str) -> str:
    """A portal URL without its trailing slash; a one-line exit 2 for anything else.

    Refused: other schemes, user names or passwords, queries and fragments, bad ports, and
    ``http://`` to any host but this machine (the token would cross the network in clear).
    """
    url = url.strip().rstrip("/")
    if not _URL.match(url):
        fail(f"{url!r} is not a portal URL like https://jit.example.com", USAGE)
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - parsing it is the check
    except ValueError:
        fail(f"{url!r} has a bad port: not a portal URL like https://jit.example.com", USAGE)
    if parts.username is not None or not parts.hostname:
        fail(f"{url!r} is not a portal URL like https://jit.example.com", USAGE)
    if parts.scheme.lower() == "http" and not is_loopback(parts.hostname):
        fail(
            f"{url} is plain http: jit sends your session only over https "
            "(http:// only to this machine: localhost, 127.0.0.1, ::1).",
            USAGE,
        )
    return url


# --- One session -----------------------------------------------------------------------------


@dataclass
class Session:
    url: str
    token: str

    @property
    def origin(self) -> str:
        return origin(self.url)

    def claims(self) -> dict[str, Any]:
        """The JWT's payload, unverified: only to show who and until when, and to spot expiry."""
        try:
            payload = self.token.split(".")[1]
            data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except (IndexError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def expired(self, now: float | None = None) -> bool:
        exp = self.claims().get("exp")
        return isinstance(exp, int | float) and exp <= (now or time.time())

    @property
    def email(self) -> str:
        return str(self.claims().get("email") or "")


# --- The file --------------------------------------------------------------------------------


@dataclass
class Store:
    """Every stored session by origin, and the origin used without ``--url``."""

    sessions: dict[str, Session] = field(default_factory=dict)
    current: str | None = None


def _session(data: object) -> Session | None:
    if not isinstance(data, dict):
        return None
    url, token = data.get("url"), data.get("token")
    if not isinstance(url, str) or not isinstance(token, str) or not url or not token:
        return None
    return Session(url=url, token=token)


def read_store() -> Store:
    """The stored sessions; an unreadable or foreign file counts as none stored."""
    try:
        data = json.loads(config_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return Store()
    if not isinstance(data, dict):
        return Store()
    if "sessions" not in data:
        # jit before 0.2 kept one session: {"url", "token"}.
        single = _session(data)
        return Store({single.origin: single}, single.origin) if single else Store()
    sessions = data.get("sessions")
    store = Store()
    for key, value in (sessions if isinstance(sessions, dict) else {}).items():
        session = _session(value)
        # An entry is used only for the origin its own URL has: never another's token.
        if session is not None and session.origin == key:
            store.sessions[key] = session
    current = data.get("current")
    store.current = current if isinstance(current, str) and current in store.sessions else None
    return store


def write_store(store: Store) -> Path:
    """Write the sessions readable by their owner only (directory 0700, file 0600)."""
    path = config_path()
    if not store.sessions:
        path.unlink(missing_ok=True)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    data = {
        "version": FILE_VERSION,
        "current": store.current,
        "sessions": {
            key: {"url": s.url, "token": s.token} for key, s in sorted(store.sessions.items())
        },
    }
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)
    os.chmod(path, 0o600)
    return path


def load_session(url: str | None = None) -> Session | None:
    """The session for ``url``'s origin (``url`` as given), or the current one without it."""
    store = read_store()
    if url is None:
        return store.sessions.get(store.current) if store.current else None
    found = store.sessions.get(origin(url))
    return Session(url=url, token=found.token) if found else None


def save_session(session: Session) -> Path:
    """Store ``session`` for its origin (replacing that origin's) and make it current."""
    store = read_store()
    store.sessions[session.origin] = session
    store.current = session.origin
    return write_store(store)


def forget_session(url: str | None = None) -> Session | None:
    """Forget the session for ``url``'s origin (the current one without it); it, or None."""
    store = read_store()
    key = origin(url) if url is not None else store.current
    removed = store.sessions.pop(key, None) if key else None
    if removed is None:
        return None
    if store.current == key:
        store.current = None
    write_store(store)
    return removed
