"""A real HTTP server that plays Pomerium Core's ConfigService, for tests and the demo.

Written from Pomerium's OpenAPI document and ``pomerium-config-api.md`` (with Pomerium's
own code for what they leave open: ``internal/databroker/server_backend_config.go``,
``pkg/grpcutil``, ``pkg/policy``), never from the portal's client. Nothing in the product
imports it. Typical test use::

    with CoreSimulator() as sim:
        sim.add_route("grafana", "https://grafana.example.com")
        client = SomeClient(sim.url, sim.shared_secret)   # base64, as Pomerium's config
        ...                                               # the portal creates a policy
        sim.attach("grafana", policy_id)                  # or the portal's UpdateRoute
        assert sim.evaluate("grafana", "alice@example.com", method="GET")

From a shell: ``python -m devtools.coresim`` (or ``manage.py core_simulator``; secret
``DEV_SHARED_SECRET`` unless ``--shared-secret``) prints one
line with the URL and serves until interrupted.

The Python API (every method is thread-safe; the same controls exist over HTTP as
``POST /_sim/<name>`` with a JSON body, ``GET /_sim/state|calls|faults|settings``):

* ``url`` - the base URL; calls go to ``url + "/pomerium.config.ConfigService/<Method>"``.
* ``shared_secret`` - base64 text; a call needs an HS256 JWT signed with its DECODED
  bytes, with exactly one claim ``exp`` (in the future), sent as header ``jwt: <token>``
  or ``Authorization: Bearer Pomerium-<token>`` (also ``Pomerium <t>``, ``Bearer <t>``, as
  Core reads them). ``token(ttl=60)`` mints one for tests.
* ``add_route(id, from_url, policy_ids=(), **fields)`` seeds a route (Core's routes come
  from its config; the portal only reads them and sets ``policyIds``);
  ``attach(route_id, policy_id)`` lists a policy on a route by hand.
* ``policy(id)``, ``policies()``, ``route(id)``, ``routes()``, ``policy_by_name(name)`` -
  records as the API returns them.
* ``hand_edit(policy_id, source_ppl=None, **fields)`` - someone edits the policy outside
  the portal (``modifiedAt`` moves); fields in lowerCamelCase. ``hand_delete(id)``.
* ``seed_foreign_policies(n, prefix="foreign")`` - n policies the portal does not own.
* ``configure(page_cap=10, version="v0.33.1")`` - the page cap applies to every list
  whatever ``limit`` asks (Core itself has none; clients must page by ``totalCount``).
* ``set_faults(error_rate=, lost_write_rate=, latency=, outage=, seed=)`` - see
  ``faults``; ``faults()`` reads them back with counts.
* ``calls`` - a Counter of calls per method name (``sim.calls["UpdatePolicy"]``), every
  call that reached a method path, faulted ones included.
* ``evaluate(route_or_policy, email, method="GET", path="/", *, user=, claims=, groups=,
  source_ip=)`` -> bool: would Core's proxy let the request in? A route id: its policies
  decide (some allows, none denies). A policy id or name: False unless some route lists
  it, else that policy's own verdict. Email and other string matchers are exact.
* ``set_clock(datetime | None)`` - freeze the clock (timestamps, JWT expiry) or let it run.
* ``reset()`` - forget policies, routes, counters and faults (secret and settings stay).

Answers follow proto-JSON: unset fields are left out (an empty list answers ``{}``, no
``totalCount``), ``totalCount`` is a string. A policy's ``sourcePpl`` is compiled as Core
compiles it (``ppl``): an unknown criterion (``date``!) answers ``invalid_argument``,
``invalid policy: unknown policy criterion: date``.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import copy
import logging
import math
import secrets
import signal
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Protocol

import jwt

from devtools.coresim.faults import FaultsMixin
from devtools.coresim.handler import SERVICE_PREFIX, SimHTTPServer, _uint64
from devtools.coresim.ppl import Request
from devtools.coresim.state import POLICY_FIELDS, CoreError, Store

__all__ = ["DEV_SHARED_SECRET", "CoreSimulator", "main", "serve"]

logger = logging.getLogger("devtools.coresim")
DEFAULT_VERSION = "v0.33.1"
# The command line's default secret: a public test value (base64 of
# "coresim-dev-shared-secret-000000"), so nothing secret is ever printed.
DEV_SHARED_SECRET = "Y29yZXNpbS1kZXYtc2hhcmVkLXNlY3JldC0wMDAwMDA="  # noqa: S105 - public test value
_JWT_PREFIXES = ("Bearer Pomerium-", "Pomerium ", "Bearer ")


def _fields(snake_or_camel: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in snake_or_camel.items():
        head, *rest = key.split("_")
        out[head + "".join(p[:1].upper() + p[1:] for p in rest)] = value
    return out


class CoreSimulator(FaultsMixin):
    """Pomerium Core's control plane, in memory (see the module docstring)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        shared_secret: str | None = None,
        *,
        page_cap: int = 10,
        version: str = DEFAULT_VERSION,
        seed: int = 0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.shared_secret = shared_secret or base64.b64encode(secrets.token_bytes(32)).decode()
        try:
            self._key = base64.b64decode(self.shared_secret, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("shared_secret must be base64") from None
        if not self._key:
            raise ValueError("shared_secret must not be empty")
        self._frozen: datetime | None = None
        self._clock = clock or (lambda: datetime.now(UTC))
        self.store = Store(self.now)
        self.version = version
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.error_rate = 0.0
        self.lost_write_rate = 0.0
        self.latency = (0.0, 0.0)
        self.outage = False
        self.fault_count = 0
        self.lost_answer_count = 0
        self.seed = seed
        self.configure(page_cap=page_cap)
        self._server: SimHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ clock, settings

    def now(self) -> datetime:
        return self._frozen or self._clock()

    def set_clock(self, moment: datetime | None) -> None:
        """Freeze the stand-in's clock at ``moment`` (aware), or let it run (None)."""
        if moment is not None and moment.tzinfo is None:
            raise ValueError("the clock needs an aware datetime")
        self._frozen = moment
        with self.store.lock:
            self.store._last = datetime.min.replace(tzinfo=UTC)  # a set clock is obeyed

    @property
    def page_cap(self) -> int:
        return self.store.page_cap

    def configure(self, *, page_cap: int | None = None, version: str | None = None) -> None:
        """Change the page cap (records per list answer, whatever ``limit`` says) or the
        version ``GetServerInfo`` reports; ValueError on a bad value."""
        if page_cap is not None and (
            isinstance(page_cap, bool) or not isinstance(page_cap, int) or page_cap < 1
        ):
            raise ValueError("page_cap must be a positive integer")
        if version is not None and (not isinstance(version, str) or not version):
            raise ValueError("version must be a non-empty string")
        if page_cap is not None:
            self.store.page_cap = page_cap
        if version is not None:
            self.version = version

    def settings(self) -> dict[str, Any]:
        return {"page_cap": self.page_cap, "version": self.version}

    # ------------------------------------------------------------------ auth

    def token(self, ttl: float = 60, **extra_claims: Any) -> str:
        """A JWT as Core wants it (``exp`` only, HS256, the decoded secret); extra claims
        make a token Core refuses (for tests)."""
        exp = int((self.now() + timedelta(seconds=ttl)).timestamp())
        return jwt.encode({"exp": exp, **extra_claims}, self._key, algorithm="HS256")

    def jwt_refusal(self, jwt_header: str | None, authorization: str | None) -> str | None:
        """None if the call carries an acceptable JWT, else Core's message."""
        raw = jwt_header or ""
        if not raw and authorization:
            for prefix in _JWT_PREFIXES:
                if authorization.startswith(prefix):
                    raw = authorization.removeprefix(prefix)
                    break
        if not raw:
            return "unauthenticated"
        try:
            header = jwt.get_unverified_header(raw)
            if header.get("alg") != "HS256":
                return "invalid JWT"
            claims = jwt.decode(
                raw,
                self._key,
                algorithms=["HS256"],
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
            )
        except jwt.InvalidTokenError:
            return "invalid JWT"
        exp = claims.get("exp") if isinstance(claims, dict) else None
        if (
            not isinstance(claims, dict)
            or set(claims) != {"exp"}
            or isinstance(exp, bool)
            or not isinstance(exp, int | float)
            or not math.isfinite(exp)
        ):
            return "invalid JWT"
        if self.now().timestamp() > exp:
            return "invalid JWT"
        return None

    # ----------------------------------------------------------------- methods

    def call(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        """Run one ConfigService method on a request that passed its schema."""
        store = self.store
        if method == "GetServerInfo":
            return {"serverType": "SERVER_TYPE_CORE", "version": self.version}
        if method in ("ListPolicies", "ListRoutes"):
            kind = "policies" if method == "ListPolicies" else "routes"
            records, total = store.page(
                kind,
                _uint64(body.get("offset"), "offset"),
                _uint64(body.get("limit"), "limit"),
                body.get("orderBy"),
                body.get("filter"),
            )
            answer: dict[str, Any] = {}
            if records:
                answer[kind] = records
            if total:
                answer["totalCount"] = str(total)
            return answer
        if method == "GetPolicy":
            return {"policy": store.get_policy(body.get("id") or "")}
        if method == "CreatePolicy":
            return {"policy": store.create_policy(body.get("policy"))}
        if method == "UpdatePolicy":
            return {"policy": store.update_policy(body.get("policy"), body.get("updateMask"))}
        if method == "DeletePolicy":
            store.delete_policy(body.get("id") or "")
            return {}
        if method == "GetRoute":
            return {"route": store.get_route(body.get("id") or "")}
        if method == "UpdateRoute":
            return {"route": store.update_route(body.get("route"), body.get("updateMask"))}
        raise CoreError("unimplemented", f"pomerium.config.ConfigService.{method} is not modelled")

    # ---------------------------------------------------------- Python helpers

    def add_route(
        self,
        route_id: str,
        from_url: str,
        policy_ids: Iterable[str] = (),
        *,
        name: str | None = None,
        to: Iterable[str] = ("http://upstream.internal",),
        **fields: Any,
    ) -> dict[str, Any]:
        """Seed a route (as Core's configuration would have it); fields in lowerCamelCase
        or snake_case (``show_error_details=True``)."""
        route = {
            "id": route_id,
            "name": name or route_id,
            "from": from_url,
            "to": list(to),
            "policyIds": list(policy_ids),
            **_fields(fields),
        }
        return self.store.add_route(route)

    def attach(self, route_id: str, policy_id: str) -> dict[str, Any]:
        """List ``policy_id`` on the route by hand (an admin edits the route)."""
        with self.store.lock:
            route = self.store.routes[route_id]
            if policy_id not in route.setdefault("policyIds", []):
                route["policyIds"].append(policy_id)
                route["modifiedAt"] = self.store._now()
            return copy.deepcopy(route)

    def detach(self, route_id: str, policy_id: str) -> dict[str, Any]:
        with self.store.lock:
            route = self.store.routes[route_id]
            if policy_id in route.get("policyIds", []):
                route["policyIds"].remove(policy_id)
                route["modifiedAt"] = self.store._now()
            return copy.deepcopy(route)

    def policy(self, policy_id: str) -> dict[str, Any]:
        """The stored policy (KeyError if none)."""
        with self.store.lock:
            return copy.deepcopy(self.store.policies[policy_id])

    def policies(self) -> list[dict[str, Any]]:
        with self.store.lock:
            return copy.deepcopy(list(self.store.policies.values()))

    def policy_by_name(self, name: str) -> dict[str, Any] | None:
        found = [p for p in self.policies() if p.get("name") == name]
        return found[0] if found else None

    def route(self, route_id: str) -> dict[str, Any]:
        with self.store.lock:
            return copy.deepcopy(self.store.routes[route_id])

    def routes(self) -> list[dict[str, Any]]:
        with self.store.lock:
            return copy.deepcopy(list(self.store.routes.values()))

    def hand_edit(
        self, policy_id: str, source_ppl: str | None = None, **fields: Any
    ) -> dict[str, Any]:
        """Someone edits the policy outside the portal; ``modifiedAt`` moves. KeyError if
        no such policy, ValueError if Core would refuse the result."""
        changes = _fields(fields)
        if source_ppl is not None:
            changes["sourcePpl"] = source_ppl
        return self.store.hand_edit(policy_id, **changes)

    def hand_delete(self, policy_id: str) -> None:
        """Someone deletes the policy outside the portal (routes keep the id)."""
        self.store.delete_policy(policy_id)

    def seed_foreign_policies(self, count: int, prefix: str = "foreign") -> list[dict[str, Any]]:
        """``count`` policies created by someone else, each letting one address in."""
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= 10_000:
            raise ValueError("count must be an integer from 0 to 10000")
        created = []
        for number in range(1, count + 1):
            source = f"allow:\n  or:\n    - email:\n        is: {prefix}-{number}@other.example\n"
            created.append(
                self.store.create_policy(
                    {
                        "name": f"{prefix}-{number:03d}",
                        "description": "created outside the portal",
                        "sourcePpl": source,
                    }
                )
            )
        return created

    def evaluate(
        self,
        route_or_policy: str,
        email: str,
        method: str = "GET",
        path: str = "/",
        *,
        user: str | None = None,
        claims: dict[str, Any] | None = None,
        groups: Iterable[str] = (),
        source_ip: str | None = None,
    ) -> bool:
        """Would Core's proxy let this request in? (see the module docstring); KeyError
        if the name is no route, policy id or policy name; ValueError if several
        policies share the name."""
        request = Request(
            email=email,
            at=self.now(),
            groups=tuple(groups),
            method=method,
            path=path,
            source_ip=source_ip,
            user=user,
            claims=claims,
        )
        store = self.store
        with store.lock:
            if route_or_policy in store.routes:
                return store.route_allows(route_or_policy, request)
            if route_or_policy in store.policies:
                policy_id = route_or_policy
            else:
                named = [
                    pid for pid, p in store.policies.items() if p.get("name") == route_or_policy
                ]
                if not named:
                    raise KeyError(route_or_policy)
                if len(named) > 1:
                    raise ValueError(f"several policies are named {route_or_policy!r}")
                policy_id = named[0]
            if not store.routes_listing(policy_id):
                return False  # a policy protects (and lets in) nothing until a route lists it
            allows, denies = store.policy_verdict(policy_id, request)
            return allows and not denies

    def reset(self) -> None:
        """Forget policies, routes, counters and faults; the secret and settings stay."""
        self.store.reset()
        self.clear_faults()
        with self._lock:
            self.calls.clear()

    # --------------------------------------------------------- HTTP controls

    def control_read(self, name: str) -> dict[str, Any]:
        if name == "calls":
            with self._lock:
                return dict(self.calls)
        if name == "faults":
            return self.faults()
        if name == "settings":
            return self.settings()
        with self._lock:
            calls = dict(self.calls)
        return {
            "policies": self.policies(),
            "routes": self.routes(),
            "settings": self.settings(),
            "faults": self.faults(),
            "calls": calls,
        }

    def control(self, name: str, body: dict[str, Any]) -> tuple[int, object]:
        """``POST /_sim/<name>``; KeyError -> 404, ValueError/TypeError -> 400."""
        if name == "reset":
            self.reset()
            return 200, {"ok": True}
        if name == "routes":
            body = dict(body)
            route_id, from_url = body.pop("id", None), body.pop("from", None)
            if not isinstance(route_id, str) or not isinstance(from_url, str):
                raise ValueError('a route needs "id" and "from" strings')
            policy_ids = body.pop("policyIds", [])
            if not isinstance(policy_ids, list) or not all(isinstance(p, str) for p in policy_ids):
                raise ValueError('"policyIds" must be a list of strings')
            return 201, self.add_route(route_id, from_url, policy_ids, **body)
        if name == "attach":
            return 200, self.attach(str(body.get("route")), str(body.get("policy")))
        if name == "hand-edit":
            fields = dict(body)
            policy_id = fields.pop("id", None)
            if not isinstance(policy_id, str):
                raise ValueError('"id" names the policy')
            unknown = sorted(set(fields) - set(POLICY_FIELDS))
            if unknown:
                raise ValueError(f"unknown policy field {unknown[0]!r}")
            return 200, self.store.hand_edit(policy_id, **fields)
        if name == "hand-delete":
            self.hand_delete(str(body.get("id") or ""))
            return 200, {"ok": True}
        if name == "foreign-policies":
            count = body.get("count")
            prefix = body.get("prefix", "foreign")
            if not isinstance(prefix, str) or not prefix:
                raise ValueError('"prefix" must be a non-empty string')
            return 201, self.seed_foreign_policies(count, prefix)  # type: ignore[arg-type]
        if name == "settings":
            self.configure(**body)
            return 200, self.settings()
        if name == "faults":
            self.set_faults(**body)
            return 200, self.faults()
        if name == "clock":
            now = body.get("now")
            self.set_clock(None if now is None else datetime.fromisoformat(str(now)))
            return 200, {"now": self.now().isoformat()}
        if name == "evaluate":
            args = dict(body)
            target, email = args.pop("target", None), args.pop("email", None)
            if not isinstance(target, str) or not isinstance(email, str):
                raise ValueError('"target" (route or policy) and "email" are required')
            return 200, {"allow": self.evaluate(target, email, **args)}
        raise KeyError(f"/_sim/{name}")

    # -------------------------------------------------------------- lifecycle

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:PORT`` (the service path goes after it)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def method_url(self, method: str) -> str:
        return self.url + SERVICE_PREFIX + method

    def start(self) -> CoreSimulator:
        """Bind (port 0 picks a free port) and serve on a background thread."""
        if self._server is not None:
            raise RuntimeError("simulator already started")
        self._server = SimHTTPServer((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"core-simulator-{self.port}",
            daemon=True,
        )
        self._thread.start()
        logger.info("Core stand-in listening on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving and cut open connections; safe to call twice."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> CoreSimulator:
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


def serve(sim: CoreSimulator, out: _Writer) -> None:
    """Run ``sim`` in the foreground until SIGINT/SIGTERM; print one line first."""
    done = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: done.set())
    sim.start()
    # The secret itself is never printed: the default is the public DEV_SHARED_SECRET.
    secret = "the default test value" if sim.shared_secret == DEV_SHARED_SECRET else "as given"
    out.write(
        f"Core stand-in on {sim.url} (ConfigService, {sim.version}, "
        f"shared secret {secret}, page cap {sim.page_cap})\n"
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
    add("--port", type=int, default=5443, help="port (default 5443; 0 picks a free one)")
    add(
        "--shared-secret",
        default=DEV_SHARED_SECRET,
        help=f"base64 shared secret (default: the public test value {DEV_SHARED_SECRET})",
    )
    add("--page-cap", type=int, default=10, help="records per list answer, whatever limit says")
    add("--core-version", default=DEFAULT_VERSION, help="GetServerInfo version")
    add("--route", action="append", default=[], metavar="ID=FROM_URL", help="seed a route")
    add("--foreign-policies", type=int, default=0, help="seed N policies not the portal's")
    add("--error-rate", type=float, default=0.0, help="share of calls answered 5xx")
    add("--lost-write-rate", type=float, default=0.0, help="share of writes committed, then 503")
    add("--seed", type=int, default=0, help="seed of the fault draws")


def from_options(options: dict[str, Any]) -> CoreSimulator:
    sim = CoreSimulator(
        host=options["host"],
        port=options["port"],
        shared_secret=options.get("shared_secret"),
        page_cap=options["page_cap"],
        version=options["core_version"],
        seed=options["seed"],
    )
    for spec in options.get("route") or []:
        route_id, sep, from_url = str(spec).partition("=")
        if not (route_id and sep and from_url):
            raise SystemExit(f"--route {spec!r} is not ID=FROM_URL")
        sim.add_route(route_id, from_url)
    sim.seed_foreign_policies(options.get("foreign_policies") or 0)
    sim.set_faults(error_rate=options["error_rate"], lost_write_rate=options["lost_write_rate"])
    return sim


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the Pomerium Core ConfigService stand-in.")
    add_arguments(parser)
    options = vars(parser.parse_args(argv))
    serve(from_options(options), sys.stdout)
