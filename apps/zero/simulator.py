"""A real HTTP server that plays Pomerium Zero, for tests and the demo.

Nothing in the product imports this module. Typical test use::

    with ZeroSimulator() as sim:
        client = ZeroClient(sim.url, sim.api_token, sim.organization_id, sim.cluster_id)
        ...
        assert sim.evaluate("jit-portal", "alice@example.com")

From a shell: ``python -m apps.zero.simulator --port 8790`` (or the Django
command ``manage.py zero_simulator``) prints one line with the API URL and
serves until interrupted.

What is simulated, and the choices made where the real API is undocumented,
is described in ``sim_state`` (latest vs effective versions, changesets) and
``sim_handler`` (endpoints and ``/_sim`` controls).
"""

from __future__ import annotations

import argparse
import logging
import random
import secrets
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Protocol

from apps.zero.sim_handler import API_PREFIX, SimHTTPServer
from apps.zero.sim_state import SimState, timestamp

__all__ = ["ZeroSimulator", "main", "serve"]

logger = logging.getLogger("apps.zero.simulator")
FAULT_STATUSES = (500, 502, 503, 429)


class ZeroSimulator:
    """Pomerium Zero for one organization, cluster and namespace, in memory.

    Fault injection: ``error_rate`` (0..1) of API calls, other than ``/token``
    unless ``faults_on_token``, are answered 500/502/503, or 429 with
    ``Retry-After: 1``, without being processed; ``latency = (min, max)``
    seconds are slept before each API call. Draws come from
    ``random.Random(seed)``, so a sequential client sees the same faults on
    every run. All of these can be changed at runtime, as attributes or via
    ``POST /_sim/faults``.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        api_token: str = "sim-api-token",  # noqa: S107 - the simulator's public test value
        organization_id: str = "org-sim",
        cluster_id: str = "cluster-sim",
        namespace_id: str = "ns-sim",
        token_ttl: int = 3600,
        *,
        auto_apply: bool = True,
        seed: int = 0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.api_token = api_token
        self.organization_id = organization_id
        self.cluster_id = cluster_id
        self.namespace_id = namespace_id
        self.token_ttl = token_ttl
        self.clock = clock or (lambda: datetime.now(UTC))
        self.state = SimState(
            organization_id, cluster_id, namespace_id, auto_apply=auto_apply, clock=self.clock
        )
        self.error_rate = 0.0
        self.latency: tuple[float, float] = (0.0, 0.0)
        self.faults_on_token = False
        self.seed = seed
        self.calls: Counter[tuple[str, str]] = Counter()
        self.fault_count = 0
        self.stopping = False
        self._lock = threading.Lock()
        self._tokens: dict[str, float] = {}  # ID token -> monotonic expiry
        self._server: SimHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ settings

    @property
    def seed(self) -> int:
        return self._seed

    @seed.setter
    def seed(self, value: int) -> None:
        self._seed = value
        self._rng = random.Random(value)  # noqa: S311 - reproducible faults, not security

    @property
    def auto_apply(self) -> bool:
        """The cluster's ``autoApplyChangesets`` setting."""
        return self.state.auto_apply

    @auto_apply.setter
    def auto_apply(self, value: bool) -> None:
        self.state.auto_apply = value

    @property
    def write_count(self) -> int:
        """Successful API creates, replaces, patches and deletes (not hand edits)."""
        return self.state.write_count

    def faults(self) -> dict[str, Any]:
        return {
            "error_rate": self.error_rate,
            "latency": list(self.latency),
            "faults_on_token": self.faults_on_token,
            "seed": self.seed,
            "fault_count": self.fault_count,
        }

    def set_faults(
        self,
        error_rate: float | None = None,
        latency: float | Sequence[float] | None = None,
        faults_on_token: bool | None = None,
        seed: int | None = None,
    ) -> None:
        """Change fault injection; ValueError on out-of-range values."""
        with self._lock:
            if error_rate is not None:
                if not 0.0 <= float(error_rate) <= 1.0:
                    raise ValueError("error_rate must be between 0 and 1")
                self.error_rate = float(error_rate)
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

    def issue_token(self) -> tuple[str, int]:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = time.monotonic() + self.token_ttl
        return token, self.token_ttl

    def check_authorization(self, header: str | None) -> bool:
        """Accept ``Bearer <idToken>`` or ``Pomerium <idToken>`` (sdk-go's scheme)."""
        scheme, _, token = (header or "").partition(" ")
        if scheme.lower() not in ("bearer", "pomerium") or not token:
            return False
        with self._lock:
            expires = self._tokens.get(token.strip())
        return expires is not None and time.monotonic() < expires

    def expire_tokens(self) -> None:
        """Invalidate every issued ID token (clients must get a new one after a 401)."""
        with self._lock:
            self._tokens.clear()

    def cluster_info(self) -> dict[str, Any]:
        host = f"{self.cluster_id}.sim.pomerium.app"
        return {
            "id": self.cluster_id,
            "name": f"Simulated cluster {self.cluster_id}",
            "domain": host,
            "fqdn": host,
            "namespaceId": self.namespace_id,
        }

    def namespaces(self) -> list[dict[str, Any]]:
        created = timestamp(datetime(2024, 1, 1, tzinfo=UTC))
        return [
            {
                "id": self.namespace_id,
                "name": self.cluster_id,
                "type": "cluster",
                "role": "admin",
                "createdAt": created,
                "updatedAt": created,
            }
        ]

    # ----------------------------------------------------- Python helpers

    def policy_by_name(self, name: str) -> dict[str, Any] | None:
        """The policy as the API returns it (latest version, pending or not)."""
        found = [p for p in self.state.list_policies(self.namespace_id) if p["name"] == name]
        return found[0] if found else None

    def effective_policy(self, name_or_id: str) -> dict[str, Any] | None:
        """The applied version the evaluator enforces, with ``appliedAt``."""
        return self.state.effective_policy(name_or_id)

    def history(self, name_or_id: str) -> list[dict[str, Any]]:
        """Every version with ``createdAt`` and ``appliedAt`` (datetimes, None if pending)."""
        return self.state.history(name_or_id)

    def evaluate(
        self,
        policy_name: str,
        email: str,
        at: datetime | None = None,
        groups: Iterable[str] = (),
    ) -> bool:
        """Would the proxy let ``email`` through ``policy_name`` (name or id) at ``at``?

        Uses the effective (applied) policy; KeyError if there is none.
        """
        return self.state.evaluate(policy_name, email, at or self.clock(), groups)

    def hand_edit(
        self, policy_name: str, ppl: object, by_email: str = "mallory@example.com"
    ) -> dict[str, Any]:
        """Simulate someone editing the policy in the Zero console."""
        return self.state.hand_edit(policy_name, ppl, by_email)

    def add_route(
        self, name: str, from_url: str, policy_ids: Iterable[str], to: Iterable[str] = ()
    ) -> dict[str, Any]:
        return self.state.add_route(name, from_url, policy_ids, to)

    def reset(self) -> None:
        """Forget all policies, routes, changesets, logs, counters and faults.

        Issued ID tokens stay valid, so a cached client keeps working.
        """
        self.state.reset()
        with self._lock:
            self.calls.clear()
            self.fault_count = 0
            self.error_rate = 0.0
            self.latency = (0.0, 0.0)
            self.faults_on_token = False

    # ------------------------------------------------------------ lifecycle

    @property
    def root_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        """The API base URL, e.g. ``http://127.0.0.1:PORT/api/v0``."""
        return self.root_url + API_PREFIX

    def start(self) -> ZeroSimulator:
        """Bind (port 0 picks a free port) and serve on a background thread."""
        if self._server is not None:
            raise RuntimeError("simulator already started")
        self.stopping = False
        self._server = SimHTTPServer((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"zero-simulator-{self.port}",
            daemon=True,
        )
        self._thread.start()
        logger.info("Zero simulator listening on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving and cut open connections; safe to call twice."""
        if self._server is None:
            return
        self.stopping = True
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> ZeroSimulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class _Writer(Protocol):
    def write(self, text: str, /) -> object: ...
    def flush(self) -> object: ...


def serve(sim: ZeroSimulator, out: _Writer) -> None:
    """Run ``sim`` in the foreground until SIGINT/SIGTERM; print its URL first."""
    done = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: done.set())
    sim.start()
    out.write(
        f"Zero simulator on {sim.url} (organization {sim.organization_id}, "
        f"cluster {sim.cluster_id}, namespace {sim.namespace_id}, "
        f"auto-apply {'on' if sim.auto_apply else 'off'})\n"
    )
    out.flush()
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options shared by ``python -m`` and the management command."""
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8790)
    parser.add_argument("--api-token", default="sim-api-token")
    parser.add_argument("--org", default="org-sim")
    parser.add_argument("--cluster", default="cluster-sim")
    parser.add_argument("--namespace", default="ns-sim")
    parser.add_argument("--token-ttl", type=int, default=3600)
    parser.add_argument("--no-auto-apply", action="store_true")
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)


def from_options(options: dict[str, Any]) -> ZeroSimulator:
    sim = ZeroSimulator(
        host=options["host"],
        port=options["port"],
        api_token=options["api_token"],
        organization_id=options["org"],
        cluster_id=options["cluster"],
        namespace_id=options["namespace"],
        token_ttl=options["token_ttl"],
        auto_apply=not options["no_auto_apply"],
        seed=options["seed"],
    )
    sim.set_faults(error_rate=options["error_rate"])
    return sim


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the Pomerium Zero API simulator.")
    add_arguments(parser)
    options = vars(parser.parse_args(argv))
    serve(from_options(options), sys.stdout)


if __name__ == "__main__":
    main()
