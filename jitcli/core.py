"""The pieces the commands share: the stored session, the HTTP client, exit codes, formatting."""

from __future__ import annotations

import base64
import json
import os
import re
import sys
import time
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

import requests

from . import __version__

# Exit codes (the README's "From a terminal" lists them).
OK = 0
FAILED = 1  # the portal or the network failed (5xx, unreachable, unexpected answer)
USAGE = 2  # bad arguments or input the portal rejected as malformed (400)
NOT_SIGNED_IN = 3  # no session, or it expired: run `jit login`
REFUSED = 4  # not allowed (403) or not found (404)
CONFLICT = 5  # a conflict, an illegal transition or a policy violation (409, 422)
ENDED = 6  # `jit wait`: the request or grant ended without going live
TIMED_OUT = 7  # `jit wait`: still not live when the timeout passed

LOGIN_HINT = "Not signed in, or your Pomerium session expired: run `jit login`."
TIMEOUT_SECONDS = 30
# Lists are paged by the portal (docs/api.md, "Lists and paging"): ask for its largest page
# and follow X-Next-Cursor, up to this many pages.
PAGE_LIMIT = 500
MAX_PAGES = 100


class CliError(Exception):
    """A failure to report in one line and exit with ``code``."""

    def __init__(self, message: str, code: int = FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def fail(message: str, code: int = FAILED) -> NoReturn:
    raise CliError(message, code)


def say(text: str) -> None:
    """A line for the person at the terminal (stderr: stdout stays clean for --json)."""
    sys.stderr.write(shown(text) + "\n")
    sys.stderr.flush()


# Hangul fillers: letters that print as blanks.
_FILLERS = frozenset("\u115f\u1160\u3164\uffa0")


def _hidden(char: str) -> bool:
    """A character the terminal would hide or that would reorder, move or recolour what
    follows: Unicode control (Cc, but tab and new lines), format (Cf: bidirectional controls,
    zero-width characters, ...), line and paragraph separators, Hangul fillers. The portal
    refuses the same characters (apps/kit/text.py; the CLI imports no app, and
    tests/cli checks that both sets are one)."""
    if char in "\t\n\r":
        return False
    return unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp") or char in _FILLERS


def shown(text: str) -> str:
    """Text from the portal as the terminal prints it: hidden characters as ``[U+202E]``."""
    if text.isascii() and text.isprintable():
        return text
    return "".join(f"[U+{ord(c):04X}]" if _hidden(c) else c for c in text)


def json_text(data: Any) -> str:
    """``data`` as JSON for scripts: exact values, hidden characters as ``\\u`` escapes."""
    text = json.dumps(data, indent=2, ensure_ascii=False)
    return "".join(json.dumps(c)[1:-1] if _hidden(c) else c for c in text)


# --- The stored session ----------------------------------------------------------------------


def config_dir() -> Path:
    """``$XDG_CONFIG_HOME/jit`` (default ``~/.config/jit``); ``%APPDATA%\\jit`` on Windows."""
    if os.name == "nt" and os.environ.get("APPDATA"):
        return Path(os.environ["APPDATA"]) / "jit"
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "jit"


def config_path() -> Path:
    return config_dir() / "session.json"


@dataclass
class Session:
    url: str
    token: str

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


def load_session() -> Session | None:
    try:
        data = json.loads(config_path().read_text(encoding="utf-8"))
        return Session(url=str(data["url"]), token=str(data["token"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save_session(session: Session) -> Path:
    """Write the session readable by its owner only (directory 0700, file 0600)."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"url": session.url, "token": session.token}, f)
    os.replace(path.with_suffix(".tmp"), path)
    os.chmod(path, 0o600)
    return path


def forget_session() -> bool:
    try:
        config_path().unlink()
        return True
    except FileNotFoundError:
        return False


def normalise_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if not re.match(r"^https?://[^/\s]+(/\S*)?$", url):
        fail(f"{url!r} is not a portal URL like https://jit.example.com", USAGE)
    return url


# --- HTTP ------------------------------------------------------------------------------------


class Api:
    """The portal's ``/api/v1`` with the stored Pomerium session; errors become ``CliError``."""

    def __init__(self, session: Session | None, url: str | None = None) -> None:
        if session is None or not session.token:
            fail(LOGIN_HINT, NOT_SIGNED_IN)
        if session.expired():
            fail(LOGIN_HINT, NOT_SIGNED_IN)
        self.session = session
        self.base = normalise_url(url or session.url) + "/api/v1"
        self.http = requests.Session()
        self.http.headers.update(
            {
                "Authorization": f"Pomerium {session.token}",
                "Accept": "application/json",
                "User-Agent": f"jit/{__version__}",
            }
        )

    def get(self, path: str, **params: Any) -> Any:
        return self._call("GET", path, params=params or None)

    def get_all(self, path: str, **params: Any) -> list[Any]:
        """Every row of a paged list, following ``X-Next-Cursor`` to its last page."""
        rows: list[Any] = []
        query = {**params, "limit": PAGE_LIMIT}
        for _ in range(MAX_PAGES):
            response = self._send("GET", path, params=query)
            page = self._answer(response)
            if not isinstance(page, list):
                fail(f"The portal answered {path} with something other than a list.", FAILED)
            rows.extend(page)
            cursor = response.headers.get("X-Next-Cursor")
            if not cursor:
                return rows
            query["cursor"] = cursor
        fail(f"{path} has more than {MAX_PAGES * PAGE_LIMIT} rows; narrow it down.", FAILED)

    def post(self, path: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
        return self._call("POST", path, json=body, headers=headers)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._answer(self._send(method, path, **kwargs))

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        try:
            return self.http.request(
                method, self.base + path, timeout=TIMEOUT_SECONDS, allow_redirects=False, **kwargs
            )
        except requests.RequestException as exc:
            fail(f"Cannot reach the portal at {self.base}: {type(exc).__name__}.", FAILED)

    @staticmethod
    def _answer(response: requests.Response) -> Any:
        status = response.status_code
        if status in (301, 302, 303, 307, 308) or status == 401:
            # Pomerium sends an unauthenticated request to sign in (or answers 401).
            fail(LOGIN_HINT, NOT_SIGNED_IN)
        try:
            body = response.json()
        except ValueError:
            body = None
        error = body.get("error") if isinstance(body, dict) else None
        if status < 400:
            if body is None:
                fail(f"The portal answered {status} without JSON; is the URL right?", FAILED)
            return body
        if not isinstance(error, dict):
            fail(f"The portal answered {status}.", FAILED)
        message = str(error.get("message") or f"HTTP {status}")
        fields = error.get("fields")
        if isinstance(fields, dict) and fields:
            message += " (" + "; ".join(f"{k}: {v}" for k, v in fields.items()) + ")"
        if error.get("code") == "not_signed_in":
            fail(LOGIN_HINT, NOT_SIGNED_IN)
        code = {400: USAGE, 403: REFUSED, 404: REFUSED, 409: CONFLICT, 422: CONFLICT}
        fail(message, code.get(status, FAILED))


# --- Input -----------------------------------------------------------------------------------

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?$")


def parse_duration(text: str) -> int:
    """``2h``, ``30m``, ``1h30m``, ``1d`` or plain minutes (``90``) → minutes."""
    text = text.strip().lower()
    if text.isdigit():
        minutes = int(text)
    else:
        match = _DURATION.match(text)
        if not match or not any(match.groups()):
            raise ValueError(f"{text!r} is not a duration like 30m, 2h or 1h30m")
        days, hours, mins = (int(g or 0) for g in match.groups())
        minutes = days * 1440 + hours * 60 + mins
    if minutes <= 0:
        raise ValueError("a duration must be longer than zero")
    return minutes


def parse_time(text: str) -> datetime:
    """An ISO 8601 date-time; without a zone it is the local time here. Returns UTC."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not a time like 2026-12-01T14:30 or 14:30+01:00") from None
    if value.tzinfo is None:
        value = value.astimezone()  # the local zone of this machine
    return value.astimezone(UTC)


def rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --- Output ----------------------------------------------------------------------------------


def parse_instant(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def local(value: str | None) -> str:
    """An RFC 3339 instant from the API, in this machine's zone (``2026-12-01 15:30 CET``)."""
    instant = parse_instant(value)
    return instant.astimezone().strftime("%Y-%m-%d %H:%M %Z") if instant else "—"


def minutes_text(minutes: int | None) -> str:
    if not minutes:
        return "—"
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    parts = [f"{v}{u}" for v, u in ((days, "d"), (hours, "h"), (mins, "m")) if v]
    return "".join(parts)


def until_text(value: str | None, now: datetime | None = None) -> str:
    instant = parse_instant(value)
    if instant is None:
        return ""
    left = instant - (now or datetime.now(UTC))
    if left <= timedelta(0):
        return "ended"
    return minutes_text(max(1, int(left.total_seconds() // 60))) + " left"


def table(headers: list[str], rows: list[list[str]]) -> str:
    if not rows:
        return ""
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows, strict=True)]
    lines = [headers, *rows]
    return "\n".join(
        "  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def emit(data: Any, as_json: bool, text: str) -> None:
    """Print ``data`` as JSON for scripts, or ``text`` for people."""
    if as_json:
        sys.stdout.write(json_text(data) + "\n")
    elif text:
        sys.stdout.write(shown(text) + "\n")
