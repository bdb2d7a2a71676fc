"""Fault injection and call counting for ``CoreSimulator`` (documented there).

Kept apart so each file stays readable; every change is checked and raises ValueError on
a bad value. Draws come from ``random.Random(seed)``, so a sequential client sees the
same faults on every run.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Sequence
from typing import Any

__all__ = ["FAULT_CODES", "FaultsMixin"]

# What a failing control plane answers without processing the call (Connect code, status).
FAULT_CODES = (("unavailable", 503), ("internal", 500))


class FaultsMixin:
    """Faults and counters (used by ``CoreSimulator`` only)."""

    calls: Counter[str]
    error_rate: float
    lost_write_rate: float
    latency: tuple[float, float]
    outage: bool
    fault_count: int
    lost_answer_count: int
    _lock: threading.Lock
    _seed: int
    _rng: random.Random

    @property
    def seed(self) -> int:
        return self._seed

    @seed.setter
    def seed(self, value: int) -> None:
        self._seed = value
        self._rng = random.Random(value)  # noqa: S311 - reproducible faults, not security

    def faults(self) -> dict[str, Any]:
        """The fault settings and what they did so far."""
        with self._lock:
            return {
                "error_rate": self.error_rate,
                "lost_write_rate": self.lost_write_rate,
                "latency": list(self.latency),
                "outage": self.outage,
                "seed": self.seed,
                "fault_count": self.fault_count,
                "lost_answer_count": self.lost_answer_count,
            }

    def set_faults(
        self,
        error_rate: float | None = None,
        lost_write_rate: float | None = None,
        latency: float | Sequence[float] | None = None,
        outage: bool | None = None,
        seed: int | None = None,
    ) -> None:
        """Change fault injection; ValueError on out-of-range values.

        ``error_rate`` (0..1) of calls answer ``unavailable`` (503) or ``internal`` (500)
        unprocessed; ``lost_write_rate`` (0..1) of successful writes are committed and then
        answered ``unavailable`` (503); ``latency`` seconds (a number or ``(min, max)``)
        are slept before each call; ``outage=True`` answers every call ``unavailable``
        until ``outage=False``.
        """
        for name, rate in (("error_rate", error_rate), ("lost_write_rate", lost_write_rate)):
            if rate is not None and (
                isinstance(rate, bool)
                or not isinstance(rate, int | float)
                or not 0.0 <= float(rate) <= 1.0
            ):
                raise ValueError(f"{name} must be a number between 0 and 1")
        span: tuple[float, float] | None = None
        if latency is not None:
            try:
                low, high = (
                    (float(latency), float(latency))
                    if isinstance(latency, int | float)
                    else (float(latency[0]), float(latency[1]))
                )
            except (TypeError, ValueError, IndexError):
                raise ValueError("latency must be seconds or (min, max)") from None
            if not 0.0 <= low <= high <= 30.0:
                raise ValueError("latency must be (min, max) with 0 <= min <= max <= 30")
            span = (low, high)
        if outage is not None and not isinstance(outage, bool):
            raise ValueError("outage must be true or false")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError("seed must be an integer")
        with self._lock:
            if error_rate is not None:
                self.error_rate = float(error_rate)
            if lost_write_rate is not None:
                self.lost_write_rate = float(lost_write_rate)
            if span is not None:
                self.latency = span
            if outage is not None:
                self.outage = outage
            if seed is not None:
                self.seed = seed

    def clear_faults(self) -> None:
        with self._lock:
            self.error_rate = 0.0
            self.lost_write_rate = 0.0
            self.latency = (0.0, 0.0)
            self.outage = False
            self.fault_count = 0
            self.lost_answer_count = 0

    # ------------------------------------------- used by the request handler

    def count_call(self, method: str) -> None:
        with self._lock:
            self.calls[method] += 1

    def draw_fault(self) -> tuple[float, tuple[str, int] | None]:
        """(seconds to sleep, (code, status) of an injected failure or None)."""
        with self._lock:
            low, high = self.latency
            delay = self._rng.uniform(low, high) if high > 0 else 0.0
            if self.outage:
                self.fault_count += 1
                return delay, ("unavailable", 503)
            if self.error_rate > 0 and self._rng.random() < self.error_rate:
                self.fault_count += 1
                return delay, self._rng.choice(FAULT_CODES)
            return delay, None

    def draw_lost_answer(self) -> bool:
        """Whether a committed write loses its answer (answered 503)."""
        with self._lock:
            if self.lost_write_rate > 0 and self._rng.random() < self.lost_write_rate:
                self.lost_answer_count += 1
                return True
            return False
