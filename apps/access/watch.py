"""What a page that updates itself needs to know: has anything it shows changed, and is
anything still pending?

The dashboard and a request's page poll a small JSON endpoint (``/status`` and
``/requests/<id>/status``) every few seconds while something is pending: a request waiting
for approval, or a grant waiting for Pomerium. The endpoint answers with the same
``reach`` answers the page shows and a digest of them; when the digest differs from the
one the page was rendered with, the page fetches itself again and swaps its content, so
there is one rendering, the server's. Polling stops when nothing is pending; a grant that
opens or closes within the next hours gets one more look at that moment.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar

from . import reach
from .states import RequestState

# Seconds between two looks while something is pending (the page's script reads it).
POLL_SECONDS = 3
# A grant that opens or closes this soon gets a look at that moment, without polling.
LOOK_AHEAD = timedelta(hours=12)


@dataclass
class Watch:
    """The state one page shows: its grants' answers and its requests' outcomes."""

    poll_seconds: ClassVar[int] = POLL_SECONDS

    now: datetime
    grants: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)

    def grant(self, pk: int, request_id: int, access: reach.Access) -> None:
        self.grants.append({"id": pk, "request_id": request_id, "access": access.as_json()})

    def request(self, pk: int, state: str, outcome: str) -> None:
        self.requests.append({"id": pk, "state": state, "outcome": outcome})

    @property
    def pending(self) -> bool:
        return any(r["state"] == RequestState.PENDING for r in self.requests) or any(
            g["access"]["state"] == reach.WAITING for g in self.grants
        )

    @property
    def next_change(self) -> datetime | None:
        """The soonest moment within ``LOOK_AHEAD`` at which a grant opens or closes."""
        moments = _moments(g["access"] for g in self.grants)
        soon = [m for m in moments if self.now < m <= self.now + LOOK_AHEAD]
        return min(soon, default=None)

    @property
    def digest(self) -> str:
        shown = {"grants": self.grants, "requests": self.requests}
        text = json.dumps(shown, sort_keys=True, default=str, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:20]

    def as_json(self) -> dict[str, Any]:
        return {
            "pending": self.pending,
            "digest": self.digest,
            "next_change": self.next_change,
            "poll_seconds": POLL_SECONDS,
            "grants": self.grants,
            "requests": self.requests,
        }


def _moments(answers: Iterable[dict[str, Any]]) -> list[datetime]:
    return [m for a in answers for m in (a["until"], a["opens_at"]) if m is not None]
