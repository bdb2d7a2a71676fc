"""The pieces every command shares: exit codes, errors, reading input and formatting output.

The stored sessions are in ``sessions``, the HTTP client in ``client``.
"""

from __future__ import annotations

import json
import re
import sys
import unicodedata
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, NoReturn

# Exit codes (docs/cli.md lists them).
OK = 0
FAILED = 1  # the portal or the network failed (5xx, unreachable, unexpected answer)
USAGE = 2  # bad arguments or input the portal rejected as malformed (400)
NOT_SIGNED_IN = 3  # no session, or it expired: run `jit login`
REFUSED = 4  # not allowed (403) or not found (404)
CONFLICT = 5  # a conflict, an illegal transition or a policy violation (409, 422)
ENDED = 6  # `jit wait`: the request or grant ended without letting you in
TIMED_OUT = 7  # `jit wait`: not allowed before the timeout (or it opens only after it)
NOT_ENFORCED = 8  # `jit wait`: Pomerium does not enforce the grant (sync error)

LOGIN_HINT = "Not signed in, or your Pomerium session expired: run `jit login`."


class CliError(Exception):
    """A failure to report in one line and exit with ``code``.

    From the portal: ``said`` is its message alone, ``fields`` its field errors (both are
    in ``message``).
    """

    def __init__(
        self,
        message: str,
        code: int = FAILED,
        fields: dict[str, str] | None = None,
        said: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.fields = fields or {}
        self.said = said or message


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


# --- Input -----------------------------------------------------------------------------------

_NUMBER = r"(\d+(?:\.\d+)?)"
_DURATION = re.compile(rf"^(?:{_NUMBER}d)?(?:{_NUMBER}h)?(?:{_NUMBER}m)?(?:{_NUMBER}s)?$")
_UNIT_SECONDS = (86400, 3600, 60, 1)
DURATION_FORMS = "10s, 5m, 1h, 1h30m or 1d"
LONGEST_SECONDS = 366 * 86400


def _seconds(text: str) -> Decimal:
    cleaned = text.strip().lower()
    if cleaned.startswith("-"):
        raise ValueError(f"{text!r} is negative; a duration is like {DURATION_FORMS}")
    if re.fullmatch(_NUMBER, cleaned):
        raise ValueError(
            f"{text!r} is not a duration: give a unit, like {cleaned}s, {cleaned}m or {cleaned}h"
        )
    match = _DURATION.match(cleaned)
    if not cleaned or not match:
        raise ValueError(f"{text!r} is not a duration like {DURATION_FORMS}")
    total = sum(
        (Decimal(n) * unit for n, unit in zip(match.groups(), _UNIT_SECONDS, strict=True) if n),
        Decimal(0),
    )
    if total <= 0:
        raise ValueError(f"{text!r}: a duration must be longer than zero")
    if total > LONGEST_SECONDS:
        raise ValueError(f"{text!r}: a duration is at most 366d")
    return total


def parse_duration(text: str) -> timedelta:
    """The one reading of a duration, for every option that takes one.

    ``10s``, ``5m``, ``1h``, ``1h30m``, ``1d``, ``1.5h``: each number carries its unit, the
    units go from days to seconds, each at most once. A bare number is refused (minutes or
    seconds? the person says which), so are zero, negative and over 366 days.
    """
    return timedelta(seconds=float(_seconds(text)))


def parse_minutes(text: str) -> int:
    """A duration of access (``--for``): the portal grants whole minutes."""
    seconds = _seconds(text)
    if seconds % 60:
        raise ValueError(f"{text!r}: access is granted in whole minutes, like 30m or 1h30m")
    return int(seconds // 60)


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
    return duration_text(timedelta(minutes=minutes)) if minutes else "—"


def duration_text(value: timedelta) -> str:
    """A duration as it is typed: ``10s``, ``5m``, ``1h30m``, ``1d2h``."""
    seconds = round(value.total_seconds(), 3)
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    mins, secs = divmod(rest, 60)
    fraction = seconds - int(seconds)
    parts = [f"{v}{u}" for v, u in ((days, "d"), (hours, "h"), (mins, "m")) if v]
    if secs or fraction or not parts:
        parts.append(f"{secs + fraction:g}s")
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
