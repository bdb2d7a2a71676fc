"""Fault injection and the settings the Zero contract leaves open, for ``ZeroSimulator``.

Part of ``simulator.ZeroSimulator`` (documented there); kept apart so each file
stays readable. Every change is checked and raises ValueError on a bad value.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from devtools.zerosim.state import SimState

__all__ = ["FAULT_STATUSES", "REFUSAL_STATUSES", "FaultsMixin"]

FAULT_STATUSES = (500, 502, 503, 429)
REFUSAL_STATUSES = (200, 403, 404)


class FaultsMixin:
    """Faults, counters and ``configure`` (used by ``ZeroSimulator`` only)."""

    state: SimState
    calls: Counter[tuple[str, str]]

    def cluster(self, cluster_id: str | None = None) -> SimState:
        raise NotImplementedError

    error_rate: float
    lost_write_rate: float
    latency: tuple[float, float]
    faults_on_token: bool
    fault_count: int
    lost_answer_count: int
    rate_limited_until: float
    rate_limited_count: int
    cluster_read_status: int
    cluster_list_status: int
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

    def configure(
        self,
        *,
        auto_apply: bool | None = None,
        max_page_size: int | None = None,
        apply_delay: float | None = None,
        allow_duplicate_names: bool | None = None,
        record_auto_applied: bool | None = None,
        ppl_as_array: bool | None = None,
        cluster_read_status: int | None = None,
        cluster_list_status: int | None = None,
        apply_failure: object = ...,
        activity_delay: float | None = None,
        refused_ppl: list[str] | tuple[str, ...] | None = None,
        cluster: str | None = None,
    ) -> None:
        """Change behaviour the contract leaves open; ValueError on bad values. ``cluster``
        (an id) picks the cluster whose settings change (default the first); the page cap
        is the first cluster's for the whole server."""
        state = self.cluster(cluster)
        checks: list[tuple[object, type | tuple[type, ...]]] = [
            (auto_apply, bool),
            (allow_duplicate_names, bool),
            (record_auto_applied, bool),
            (ppl_as_array, bool),
        ]
        for value, kind in checks:
            if value is not None and not isinstance(value, kind):
                raise ValueError(f"{value!r} must be true or false")
        if max_page_size is not None and (
            isinstance(max_page_size, bool)
            or not isinstance(max_page_size, int)
            or max_page_size < 1
        ):
            raise ValueError("max_page_size must be a positive integer")
        for delay, name in ((apply_delay, "apply_delay"), (activity_delay, "activity_delay")):
            if delay is not None and (
                isinstance(delay, bool) or not isinstance(delay, int | float) or delay < 0
            ):
                raise ValueError(f"{name} must be a number of seconds >= 0")
        if refused_ppl is not None and (
            not isinstance(refused_ppl, list | tuple)
            or not all(isinstance(n, str) and n for n in refused_ppl)
        ):
            raise ValueError("refused_ppl must be a list of non-empty strings")
        for status in (cluster_read_status, cluster_list_status):
            if status is not None and status not in REFUSAL_STATUSES:
                raise ValueError(f"cluster read/list status must be one of {REFUSAL_STATUSES}")
        failure: tuple[str, str] | None = None
        if apply_failure is not ... and apply_failure is not None:
            if isinstance(apply_failure, dict):
                apply_failure = (apply_failure.get("status"), apply_failure.get("message"))
            if (
                not isinstance(apply_failure, tuple | list)
                or len(apply_failure) != 2
                or apply_failure[0] not in ("failed", "rejected")
                or not isinstance(apply_failure[1], str)
            ):
                raise ValueError(
                    "apply_failure must be null or "
                    '{"status": "failed"|"rejected", "message": "..."}'
                )
            failure = (str(apply_failure[0]), apply_failure[1])
        with state.lock:
            if auto_apply is not None:
                state.auto_apply = auto_apply
            if max_page_size is not None:
                state.max_page_size = max_page_size
            if apply_delay is not None:
                state.apply_delay = float(apply_delay)
            if allow_duplicate_names is not None:
                state.allow_duplicate_names = allow_duplicate_names
            if record_auto_applied is not None:
                state.record_auto_applied = record_auto_applied
            if ppl_as_array is not None:
                state.ppl_as_array = ppl_as_array
            if apply_failure is not ...:
                state.apply_failure = failure
            if activity_delay is not None:
                state.activity_delay = float(activity_delay)
            if refused_ppl is not None:
                state.refused_ppl = tuple(refused_ppl)
        if cluster_read_status is not None:
            self.cluster_read_status = cluster_read_status
        if cluster_list_status is not None:
            self.cluster_list_status = cluster_list_status

    def sim_settings(self) -> dict[str, Any]:
        """The current ``configure`` values, as ``/_sim/settings`` names them."""
        state = self.state
        failure = state.apply_failure
        return {
            "autoApplyChangesets": state.auto_apply,
            "maxPageSize": state.max_page_size,
            "applyDelay": state.apply_delay,
            "allowDuplicateNames": state.allow_duplicate_names,
            "recordAutoApplied": state.record_auto_applied,
            "pplAsArray": state.ppl_as_array,
            "clusterReadStatus": self.cluster_read_status,
            "clusterListStatus": self.cluster_list_status,
            "applyFailure": {"status": failure[0], "message": failure[1]} if failure else None,
            "activityDelay": state.activity_delay,
            "refusedPpl": list(state.refused_ppl),
        }

    def faults(self) -> dict[str, Any]:
        return {
            "error_rate": self.error_rate,
            "lost_write_rate": self.lost_write_rate,
            "latency": list(self.latency),
            "faults_on_token": self.faults_on_token,
            "seed": self.seed,
            "fault_count": self.fault_count,
            "lost_answer_count": self.lost_answer_count,
            "rate_limited_seconds_left": max(0.0, self.rate_limited_until - time.monotonic()),
            "rate_limited_count": self.rate_limited_count,
        }

    def set_faults(
        self,
        error_rate: float | None = None,
        latency: float | Sequence[float] | None = None,
        faults_on_token: bool | None = None,
        seed: int | None = None,
        lost_write_rate: float | None = None,
        rate_limit_seconds: float | None = None,
    ) -> None:
        """Change fault injection; ValueError on out-of-range values.

        ``rate_limit_seconds`` starts a rate-limit episode now (0 ends one).
        """
        with self._lock:
            for name, rate in (("error_rate", error_rate), ("lost_write_rate", lost_write_rate)):
                if rate is not None and not 0.0 <= float(rate) <= 1.0:
                    raise ValueError(f"{name} must be between 0 and 1")
            if rate_limit_seconds is not None and float(rate_limit_seconds) < 0:
                raise ValueError("rate_limit_seconds must not be negative")
            if error_rate is not None:
                self.error_rate = float(error_rate)
            if lost_write_rate is not None:
                self.lost_write_rate = float(lost_write_rate)
            if rate_limit_seconds is not None:
                self.rate_limited_until = time.monotonic() + float(rate_limit_seconds)
            if latency is not None:
                low, high = (
                    (float(latency), float(latency))
                    if isinstance(latency, int | float)
                    else (float(latency[0]), float(latency[1]))
                )
                if not 0.0 <= low <= high:
                    raise ValueError("latency must be (min, max) with 0 <= min <= max")
                self.latency = (low, high)
            if faults_on_token is not None:
                self.faults_on_token = bool(faults_on_token)
            if seed is not None:
                self.seed = int(seed)

    # ------------------------------------------- used by the request handler

    def count_call(self, method: str, template: str) -> None:
        with self._lock:
            self.calls[(method, template)] += 1

    def draw_fault(self, *, is_token: bool) -> tuple[float, int | None]:
        """(seconds to sleep, fault status or None) for one API call."""
        with self._lock:
            low, high = self.latency
            delay = self._rng.uniform(low, high) if high > 0 else 0.0
            if is_token and not self.faults_on_token:
                return delay, None
            if self.error_rate > 0 and self._rng.random() < self.error_rate:
                self.fault_count += 1
                return delay, self._rng.choice(FAULT_STATUSES)
            return delay, None

    def rate_limited(self) -> bool:
        """True (and counted) while a rate-limit episode lasts."""
        with self._lock:
            if time.monotonic() < self.rate_limited_until:
                self.rate_limited_count += 1
                return True
            return False

    def draw_lost_answer(self) -> bool:
        """Whether a committed policy write loses its answer (answered 502)."""
        with self._lock:
            if self.lost_write_rate > 0 and self._rng.random() < self.lost_write_rate:
                self.lost_answer_count += 1
                return True
            return False
