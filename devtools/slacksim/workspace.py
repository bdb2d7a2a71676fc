"""The Slack workspace the stand-in plays: people, channels, messages, views, what it sent.

Pure state with a lock; the HTTP handler (``simulator``) reads and changes it. Written from
Slack's documentation: ids look like Slack's (``U…``, ``C…``, ``T…``, ``ts`` as
``1712345678.000100``), a trigger_id is good once and for 3 seconds, a response_url for
30 minutes and 5 uses, chat.postMessage allows about one message per second per channel
(bursts of 10 tolerated), and every other method a per-minute tier.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

TRIGGER_SECONDS = 3.0
RESPONSE_URL_SECONDS = 30 * 60
RESPONSE_URL_USES = 5
# Per method, per minute (Slack's tiers: 1 = 1+, 2 = 20+, 3 = 50+, 4 = 100+).
TIER_PER_MINUTE = {"users.info": 100, "views.open": 100, "chat.update": 50, "auth.test": 100}
# chat.postMessage: one a second per channel on average; Slack tolerates "short bursts"
# without saying how short: here, 10 within any 10 seconds.
POST_WINDOW_SECONDS = 10.0
POST_BURST = 10


@dataclass
class Person:
    id: str
    name: str
    email: str
    real_name: str = ""
    deleted: bool = False
    is_bot: bool = False
    is_email_confirmed: bool = True


@dataclass
class Posted:
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    bot_id: str
    edited: int = 0


@dataclass
class OpenView:
    id: str
    user: str
    view: dict[str, Any]
    errors: dict[str, str] = field(default_factory=dict)
    closed: bool = False


@dataclass
class Trigger:
    user: str
    issued: float
    used: bool = False


@dataclass
class ResponseUrl:
    user: str
    channel: str
    issued: float
    uses: int = 0


@dataclass
class Ephemeral:
    user: str
    channel: str
    text: str
    at: float


class Workspace:
    def __init__(
        self,
        *,
        team_id: str = "T0JITDEMO",
        team_domain: str = "jit-demo",
        app_id: str = "A0JITPORTAL",
        bot_token: str,
        scopes: tuple[str, ...] = ("chat:write", "users:read", "users:read.email"),
    ) -> None:
        self.lock = threading.RLock()
        self.team_id = team_id
        self.team_domain = team_domain
        self.app_id = app_id
        self.bot_token = bot_token
        self.bot_id = "B0JITBOT01"
        self.bot_user = "U0JITBOT01"
        self.scopes = set(scopes)
        self.people: dict[str, Person] = {}
        self.channels: dict[str, dict[str, Any]] = {}
        self.messages: dict[tuple[str, str], Posted] = {}
        self.views: dict[str, OpenView] = {}
        self.triggers: dict[str, Trigger] = {}
        self.response_urls: dict[str, ResponseUrl] = {}
        self.ephemerals: list[Ephemeral] = []
        self.calls: list[dict[str, Any]] = []
        self.deliveries: dict[str, dict[str, Any]] = {}
        self.forced_limits: dict[str, list[int]] = {}  # method -> [remaining, retry_after]
        self._recent: dict[str, deque[float]] = {}
        self._last_ts = 0.0

    # --- people and channels -------------------------------------------------------------

    def add_person(self, person: Person) -> None:
        with self.lock:
            self.people[person.id] = person

    def add_channel(self, channel_id: str, name: str, *, member: bool = True) -> None:
        with self.lock:
            self.channels[channel_id] = {"name": name, "member": member, "archived": False}

    # --- ids -----------------------------------------------------------------------------

    def new_ts(self) -> str:
        with self.lock:
            now = max(time.time(), self._last_ts + 0.000001)
            self._last_ts = now
            return f"{now:.6f}"

    def new_trigger(self, user: str) -> str:
        trigger = f"{int(time.time())}.{secrets.randbelow(10**9)}.{secrets.token_hex(8)}"
        with self.lock:
            self.triggers[trigger] = Trigger(user=user, issued=time.monotonic())
        return trigger

    def new_response_url(self, base: str, user: str, channel: str) -> str:
        token = secrets.token_urlsafe(18)
        with self.lock:
            self.response_urls[token] = ResponseUrl(
                user=user, channel=channel, issued=time.monotonic()
            )
        return f"{base}/actions/{self.team_id}/{secrets.randbelow(10**12)}/{token}"

    # --- rate limits ---------------------------------------------------------------------

    def limited(self, method: str, channel: str = "") -> int | None:
        """Seconds to wait when this call is over the limit, else None (and it counts)."""
        with self.lock:
            forced = self.forced_limits.get(method)
            if forced and forced[0] > 0:
                forced[0] -= 1
                return forced[1]
            now = time.monotonic()
            if method == "chat.postMessage":
                key, window, allowed = f"post:{channel}", POST_WINDOW_SECONDS, POST_BURST
            else:
                key, window, allowed = method, 60.0, TIER_PER_MINUTE.get(method, 20)
            recent = self._recent.setdefault(key, deque())
            while recent and now - recent[0] > window:
                recent.popleft()
            if len(recent) >= allowed:
                return max(1, int(window - (now - recent[0])) + 1)
            recent.append(now)
            return None

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "team_id": self.team_id,
                "channels": self.channels,
                "messages": [
                    {
                        "channel": m.channel,
                        "ts": m.ts,
                        "text": m.text,
                        "blocks": m.blocks,
                        "edited": m.edited,
                    }
                    for m in sorted(self.messages.values(), key=lambda m: m.ts)
                ],
                "views": [
                    {
                        "id": v.id,
                        "user": v.user,
                        "view": v.view,
                        "errors": v.errors,
                        "closed": v.closed,
                    }
                    for v in self.views.values()
                ],
                "ephemerals": [
                    {"user": e.user, "channel": e.channel, "text": e.text} for e in self.ephemerals
                ],
                "calls": list(self.calls),
            }
