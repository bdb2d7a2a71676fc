"""A real HTTP server that plays Pomerium Zero, for tests and the demo.

Nothing in the product imports this module. Typical test use::

    with ZeroSimulator() as sim:
        client = ZeroClient(sim.url, sim.api_token, sim.organization_id, sim.cluster_id)
        ...
        assert sim.evaluate("jit-portal", "alice@example.com")

From a shell: ``python -m devtools.zerosim.simulator --port 8790`` (or the Django
command ``manage.py zero_simulator``) prints one line with the API URL and
serves until interrupted.

Written from the wire contract (``docs/zero-api.md``, ``apps/pomerium/contract``),
never from the portal's client; where the contract is silent it takes the
strictest plausible reading. What is simulated is described in ``state``
(latest vs effective versions, one pending changeset per namespace, apply and
failure), ``handler`` (endpoints, strict request checks), ``controls``
(the ``/_sim`` controls) and ``ppl`` (PPL validation and the evaluator).
"""

from __future__ import annotations

import argparse
import logging
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

from devtools.zerosim.faults import FaultsMixin
from devtools.zerosim.handler import API_PREFIX, SimHTTPServer
from devtools.zerosim.ppl import Request
from devtools.zerosim.state import SimState, console_user, timestamp
from devtools.zerosim.views import SimError

__all__ = ["ZeroSimulator", "main", "serve"]

logger = logging.getLogger("devtools.zerosim.simulator")
CREATED = datetime(2024, 1, 1, tzinfo=UTC)


class ZeroSimulator(FaultsMixin):
    """Pomerium Zero for one organization, in memory: one cluster and namespace to begin
    with, more with ``add_cluster`` (each its own namespace, policies, changesets, activity
    log and settings; requests reach the cluster their cluster id, namespace id, policy id
    or changeset id names). ``set_cluster_outage`` makes one cluster answer 5xx.

    Fault injection (attributes, ``set_faults`` or ``POST /_sim/faults``):

    * ``error_rate`` (0..1) of API calls, other than ``/token`` unless
      ``faults_on_token``, are answered 500/502/503, or 429 with
      ``Retry-After: 1``, without being processed;
    * ``lost_write_rate`` (0..1) of successful policy writes are committed and
      then answered 502 ("applied, then 5xx": the answer was lost);
    * ``rate_limit_seconds=N`` starts an episode: every API call, ``/token``
      included, answers 429 with ``Retry-After: 1`` for N seconds, then recovers;
    * ``latency = (min, max)`` seconds are slept before each API call.

    Draws come from ``random.Random(seed)``, so a sequential client sees the
    same faults on every run.

    Behaviour where the contract is silent (keywords, ``configure`` or
    ``POST /_sim/settings``): ``max_page_size`` caps every list page (default
    10, below what clients ask for); ``apply_delay`` seconds an applied
    changeset stays ``applying`` (0 = ``applied`` at once);
    ``allow_duplicate_names`` (default False: 409); ``record_auto_applied``
    (an applied changeset per auto-applied write); ``ppl_as_array`` (answers
    carry a rule object sent as a list of one); ``cluster_read_status`` /
    ``cluster_list_status`` (200, or 403/404 to refuse the narrow cluster read
    or the cluster list); ``apply_failure`` (None, or (status, message) with
    which every apply fails).
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
        max_page_size: int = 10,
        apply_delay: float = 0.2,
        allow_duplicate_names: bool = False,
        record_auto_applied: bool = False,
        ppl_as_array: bool = False,
        cluster_read_status: int = 200,
        cluster_list_status: int = 200,
        lost_write_rate: float = 0.0,
        validate_answers: bool = True,
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
        # Every cluster of the organization, the first one (``state``) first; each has its
        # own namespace, policies, changesets, activity log and settings.
        self.states: dict[str, SimState] = {cluster_id: self.state}
        self.outages: dict[str, int] = {}  # cluster id -> status every call about it gets
        self.validate_answers = validate_answers
        self.cluster_read_status = 200
        self.cluster_list_status = 200
        self.configure(
            max_page_size=max_page_size,
            apply_delay=apply_delay,
            allow_duplicate_names=allow_duplicate_names,
            record_auto_applied=record_auto_applied,
            ppl_as_array=ppl_as_array,
            cluster_read_status=cluster_read_status,
            cluster_list_status=cluster_list_status,
        )
        self.error_rate = 0.0
        self.lost_write_rate = 0.0
        self.latency: tuple[float, float] = (0.0, 0.0)
        self.faults_on_token = False
        self.rate_limited_until = 0.0  # monotonic end of a rate-limit episode
        self.rate_limited_count = 0
        self.lost_answer_count = 0
        self.seed = seed
        self.calls: Counter[tuple[str, str]] = Counter()
        self.fault_count = 0
        self.stopping = False
        self._lock = threading.Lock()
        self._tokens: dict[str, float] = {}  # ID token -> monotonic expiry
        self._server: SimHTTPServer | None = None
        self._thread: threading.Thread | None = None
        if lost_write_rate:
            self.set_faults(lost_write_rate=lost_write_rate)

    # ------------------------------------------------------------ settings

    @property
    def auto_apply(self) -> bool:
        """The cluster's ``autoApplyChangesets`` setting."""
        return self.state.auto_apply

    @auto_apply.setter
    def auto_apply(self, value: bool) -> None:
        self.state.auto_apply = value

    @property
    def write_count(self) -> int:
        """Successful API creates, replaces, patches and deletes (not hand edits), in every
        cluster (``cluster(id).write_count`` counts one)."""
        return sum(state.write_count for state in self.states.values())

    # ------------------------------------------------------------ clusters

    def add_cluster(
        self, cluster_id: str, namespace_id: str, *, auto_apply: bool = True
    ) -> SimState:
        """Another cluster of the organization, with a namespace of its own."""
        if cluster_id in self.states:
            raise ValueError(f"cluster {cluster_id} exists already")
        if any(s.namespace_id == namespace_id for s in self.states.values()):
            raise ValueError(f"namespace {namespace_id} belongs to another cluster")
        first = self.state
        state = SimState(
            self.organization_id,
            cluster_id,
            namespace_id,
            auto_apply=auto_apply,
            clock=self.clock,
            max_page_size=first.max_page_size,
            apply_delay=first.apply_delay,
            allow_duplicate_names=first.allow_duplicate_names,
            record_auto_applied=first.record_auto_applied,
            ppl_as_array=first.ppl_as_array,
        )
        self.states[cluster_id] = state
        return state

    def cluster(self, cluster_id: str | None = None) -> SimState:
        """The state of one cluster (default: the first); KeyError if unknown."""
        return self.state if cluster_id is None else self.states[cluster_id]

    def set_cluster_outage(self, cluster_id: str, status: int | None = 503) -> None:
        """Every API call about ``cluster_id`` (its cluster, settings, namespace, policies,
        changesets and activity) answers ``status`` unprocessed; None ends the outage."""
        if cluster_id not in self.states:
            raise KeyError(cluster_id)
        if status is None:
            self.outages.pop(cluster_id, None)
        else:
            self.outages[cluster_id] = status

    def state_for_namespace(self, namespace_id: str | None) -> SimState:
        """The cluster holding ``namespace_id``; the first one for an unknown namespace
        (which then answers as it did alone: an empty list, or 400 on a write)."""
        for state in self.states.values():
            if state.namespace_id == namespace_id:
                return state
        return self.state

    def state_for_policy(self, policy_id: str) -> SimState:
        """The cluster holding the policy id (ids are unique in the organization)."""
        for state in self.states.values():
            with state.lock:
                if policy_id in state.versions:
                    return state
        return self.state

    def state_for_changeset(self, changeset_id: str) -> SimState:
        for state in self.states.values():
            with state.lock:
                if changeset_id in state.changesets:
                    return state
        return self.state

    # ------------------------------------------- used by the request handler

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

    def cluster_info(self, cluster_id: str | None = None) -> dict[str, Any]:
        state = self.cluster(cluster_id)
        host = f"{state.cluster_id}.sim.pomerium.app"
        return {
            "id": state.cluster_id,
            "name": f"Simulated cluster {state.cluster_id}",
            "domain": host,
            "fqdn": host,
            "namespaceId": state.namespace_id,
            "createdAt": timestamp(CREATED),
            "updatedAt": timestamp(CREATED),
            "componentVersions": {},
            "hasFailingHealthChecks": False,
        }

    def settings(self, cluster_id: str | None = None) -> dict[str, Any]:
        """The cluster's Settings answer (plausible values; the portal reads one key)."""
        state = self.cluster(cluster_id)
        return {
            "id": f"settings-{state.cluster_id}",
            "autoApplyChangesets": state.auto_apply,
            "passIdentityHeaders": True,
            "address": ":443",
            "codecType": "auto",
            "cookieName": "_pomerium",
            "cookieHttpOnly": True,
            "cookieExpire": "14h0m0s",
            "defaultUpstreamTimeout": "30s",
            "dnsLookupFamily": "AUTO",
            "logLevel": "info",
            "skipXffAppend": False,
            "timeoutIdle": "5m0s",
            "timeoutRead": "30s",
            "timeoutWrite": "0s",
            "createdAt": timestamp(CREATED),
            "updatedAt": timestamp(CREATED),
        }

    def namespaces(self) -> list[dict[str, Any]]:
        created = timestamp(CREATED)
        return [
            {
                "id": state.namespace_id,
                "name": state.cluster_id,
                "type": "cluster",
                "role": "admin",
                "createdAt": created,
                "updatedAt": created,
            }
            for state in self.states.values()
        ]

    # ----------------------------------------------------- Python helpers

    def policy_by_name(self, name: str, *, cluster: str | None = None) -> dict[str, Any] | None:
        """The policy as the API returns it (latest version, pending or not); first if several.
        ``cluster`` (an id) picks the cluster; default the first."""
        found = self.policies_by_name(name, cluster=cluster)
        return found[0] if found else None

    def policies_by_name(self, name: str, *, cluster: str | None = None) -> list[dict[str, Any]]:
        """Every live policy with that name (several when duplicates are allowed)."""
        state = self.cluster(cluster)
        with state.lock:
            return [state.get_policy(r["id"]) for r in state._live() if r["name"] == name]

    def effective_policy(
        self, name_or_id: str, *, cluster: str | None = None
    ) -> dict[str, Any] | None:
        """The applied version the evaluator enforces, with ``appliedAt``."""
        return self.cluster(cluster).effective_policy(name_or_id)

    def history(self, name_or_id: str) -> list[dict[str, Any]]:
        """Every version with ``createdAt`` and ``appliedAt`` (datetimes, None if pending)."""
        return self.state.history(name_or_id)

    def evaluate(
        self,
        policy_name: str,
        email: str,
        at: datetime | None = None,
        groups: Iterable[str] = (),
        *,
        method: str | None = None,
        path: str | None = None,
        source_ip: str | None = None,
        user: str | None = None,
        claims: dict[str, Any] | None = None,
        cluster: str | None = None,
    ) -> bool:
        """Would the proxy let this request through ``policy_name`` (name or id) at ``at``?
        ``cluster`` (an id) is the cluster whose proxy decides; default the first.

        Uses the effective (applied) policy only; KeyError if there is none,
        ValueError if several applied policies share the name. Email and the
        other string matchers compare exactly (case-sensitive); a criterion
        whose fact is not given (method, path, source_ip, user, claims) never
        matches.
        """
        request = Request(
            email=email,
            at=at or self.clock(),
            groups=tuple(groups),
            method=method,
            path=path,
            source_ip=source_ip,
            user=user,
            claims=claims,
        )
        return self.cluster(cluster).evaluate(policy_name, request)

    def hand_edit(
        self,
        policy_name: str,
        ppl: object = None,
        by_email: str = "mallory@example.com",
        **fields: Any,
    ) -> dict[str, Any]:
        """Someone edits the policy in the Zero console (joins the pending changeset
        when auto-apply is off). KeyError if no such policy, ValueError if invalid."""
        return self.state.hand_edit(policy_name, ppl, by_email or "mallory@example.com", **fields)

    def hand_create(
        self, name: str, ppl: object, by_email: str = "mallory@example.com"
    ) -> dict[str, Any]:
        """Someone creates a policy in the Zero console."""
        return self.state.hand_create(name, ppl, by_email)

    def pending_changeset(self) -> dict[str, Any] | None:
        """The namespace's pending changeset (as the API shows it), if any."""
        return self.state.pending_changeset()

    def changesets(self, status: str | None = None) -> list[dict[str, Any]]:
        """Every changeset, newest first, unpaged."""
        with self.state.lock:
            views = [self.state.get_changeset(c) for c in self.state.changesets]
        views.sort(key=lambda v: v["createdAt"], reverse=True)
        return [v for v in views if status is None or v["status"] == status]

    def fail_changeset(
        self, changeset_id: str, status: str = "failed", message: str = "rejected by the cluster"
    ) -> dict[str, Any]:
        """The cluster refuses a pending or applying changeset now."""
        return self.state.fail_changeset(changeset_id, status, message)

    def console_apply(self, changeset_id: str, by_email: str = "") -> dict[str, Any]:
        """A human applies the changeset in the console; KeyError (404) or ValueError (409)."""
        try:
            return self.state.apply_changeset(
                changeset_id, console_user(by_email or "admin@example.com")
            )
        except SimError as exc:
            if exc.status == 404:
                raise KeyError(changeset_id) from None
            raise ValueError(exc.message) from None

    def add_route(
        self, name: str, from_url: str, policy_ids: Iterable[str], to: Iterable[str] = ()
    ) -> dict[str, Any]:
        return self.state.add_route(name, from_url, policy_ids, to)

    def reset(self) -> None:
        """Forget all policies, routes, changesets, logs, counters, faults and apply failures.

        Issued ID tokens and the other ``configure`` settings stay, so a cached
        client keeps working.
        """
        for state in self.states.values():
            state.reset()
        self.outages.clear()
        with self._lock:
            self.calls.clear()
            self.fault_count = 0
            self.error_rate = 0.0
            self.lost_write_rate = 0.0
            self.lost_answer_count = 0
            self.rate_limited_until = 0.0
            self.rate_limited_count = 0
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
    clusters = ", ".join(
        f"cluster {state.cluster_id}, namespace {state.namespace_id}"
        for state in sim.states.values()
    )
    out.write(
        f"Zero simulator on {sim.url} (organization {sim.organization_id}, "
        f"{clusters}, auto-apply {'on' if sim.auto_apply else 'off'})\n"
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
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    add("--port", type=int, default=8790, help="port (0 picks a free one)")
    add("--api-token", default="sim-api-token", help="the refresh token /token accepts")
    add("--org", default="org-sim", help="organization id")
    add("--cluster", default="cluster-sim", help="cluster id")
    add("--namespace", default="ns-sim", help="the cluster's namespace id")
    add("--token-ttl", type=int, default=3600, help="ID token lifetime in seconds")
    add("--no-auto-apply", action="store_true", help="writes wait in a pending changeset")
    add("--error-rate", type=float, default=0.0, help="share of calls answered 5xx/429")
    add(
        "--lost-write-rate",
        type=float,
        default=0.0,
        help="share of policy writes committed, then answered 502",
    )
    add("--seed", type=int, default=0, help="seed of the fault draws")
    add("--max-page-size", type=int, default=10, help="cap on every list page")
    add("--apply-delay", type=float, default=0.2, help="seconds a changeset stays applying")
    add("--allow-duplicate-names", action="store_true", help="no 409 on a duplicate name")
    add(
        "--extra-cluster",
        action="append",
        default=[],
        metavar="CLUSTER_ID:NAMESPACE_ID",
        help="another cluster of the organization, with its own namespace (repeatable)",
    )


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
        max_page_size=options["max_page_size"],
        apply_delay=options["apply_delay"],
        allow_duplicate_names=options["allow_duplicate_names"],
    )
    for extra in options.get("extra_cluster") or []:
        cluster_id, sep, namespace_id = str(extra).partition(":")
        if not (cluster_id and sep and namespace_id):
            raise SystemExit(f"--extra-cluster {extra!r} is not CLUSTER_ID:NAMESPACE_ID")
        sim.add_cluster(cluster_id, namespace_id, auto_apply=not options["no_auto_apply"])
    sim.set_faults(error_rate=options["error_rate"], lost_write_rate=options["lost_write_rate"])
    return sim


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the Pomerium Zero API simulator.")
    add_arguments(parser)
    options = vars(parser.parse_args(argv))
    serve(from_options(options), sys.stdout)


if __name__ == "__main__":
    main()
