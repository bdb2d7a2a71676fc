"""A short per-process memory of who is on call, so a burst of requests asks once.

At most ``ONCALL_CACHE_SECONDS`` (capped at 60 s in settings) per (provider, schedule); an
``Unreachable`` answer is not kept, so the next request asks again.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime

from django.conf import settings

from apps.access.oncall import OnCallEntry, Source

_LOCK = threading.Lock()
_ALL: list[Cached] = []


class Cached:
    def __init__(self, source: Source) -> None:
        self.source = source
        self._kept: dict[str, tuple[float, list[OnCallEntry]]] = {}
        with _LOCK:
            _ALL.append(self)

    def on_call(self, schedule: str, *, now: datetime) -> list[OnCallEntry]:
        ttl = min(float(settings.ONCALL_CACHE_SECONDS), 60.0)
        with _LOCK:
            kept = self._kept.get(schedule)
        if kept is not None and time.monotonic() - kept[0] < ttl:
            return kept[1]
        entries = self.source.on_call(schedule, now=now)  # Unreachable propagates
        with _LOCK:
            self._kept[schedule] = (time.monotonic(), entries)
        return entries


def forget() -> None:
    """Drop every kept answer (tests; an operator's shell)."""
    with _LOCK:
        for cached in _ALL:
            cached._kept.clear()
