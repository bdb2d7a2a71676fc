"""Start, watch and stop the demo's processes: a small supervisor plus the demo stack.

``Supervisor`` is generic: it starts children in their own process groups, prefixes
their output with their names, waits until each is ready, notices when one dies and
stops them all (SIGTERM, then SIGKILL to the group after a grace period). The functions
below it describe the demo: which children, which ports, which environment. ``run_demo``
and the tests' one ``demo_stack`` fixture (``tests.support.demo_stack``) both build the
stack from them, so they run the same thing. A part that is missing fails both.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from devtools.coresim.simulator import DEV_SHARED_SECRET
from devtools.demo.identities import DEMO_IDENTITIES

BASE_DIR = Path(__file__).resolve().parent.parent.parent
STOP_GRACE_SECONDS = 10.0
READY_TIMEOUT_SECONDS = 90.0

# The simulator accepts exactly these; the portal is given the same values.
ZERO_API_TOKEN = "demo-api-token"  # noqa: S105 - a fixed credential of the local simulator
ZERO_ORGANIZATION_ID = "demo-org"
# Two clusters, as many organisations run them; the first one holds Grafana, so the
# story's evaluate link (which asks the simulator's first cluster) needs no cluster.
ZERO_CLUSTERS = {"staging": "demo-staging", "production": "demo-production"}
ZERO_NAMESPACES = {"staging": "ns-staging", "production": "ns-production"}
ZERO_DEFAULT_CLUSTER = "staging"
ROUTE_HOST = "localhost"
# The Slack stand-in's fixed credentials and channel, and the PagerDuty schedule Dave is
# on call in (the seed names them on the demo resources).
SLACK_BOT_TOKEN = "xoxb-demo-0000-jitportal"  # noqa: S105 - the local stand-in's
SLACK_SIGNING_SECRET = "demo-signing-secret-0001"  # noqa: S105 - the local stand-in's
SLACK_CHANNEL = "C0JITAPPROVALS"
PAGERDUTY_TOKEN = "demo-pagerduty-token"  # noqa: S105 - the local stand-in's
PAGERDUTY_SCHEDULE = "PDEMO01"
# The Pomerium Core stand-in: the target ``edge`` (a ConfigService on its own port), the
# stand-in's public test secret, and the route the edge resource's policy is attached to.
CORE_TARGET = "edge"
CORE_ROUTE = "edge-console"
CORE_ROUTE_FROM = "https://edge.localhost"


class TextSink(Protocol):
    """Where output goes: a text stream, or a management command's ``self.stdout``."""

    def write(self, text: str, /) -> object: ...

    def flush(self) -> object: ...


class ChildFailed(RuntimeError):
    """A child exited (or never became ready); the message is one readable line."""


@dataclass
class Child:
    """One supervised process and how to tell that it is ready.

    Ready means: ``ready_url`` answers HTTP 200, else ``ready_port`` accepts a TCP
    connection, else a line of output contains ``ready_line``, else simply being alive.
    """

    name: str
    argv: list[str]
    ready_url: str | None = None
    ready_port: int | None = None
    ready_line: str | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    saw_ready_line: threading.Event = field(default_factory=threading.Event, repr=False)


class Supervisor:
    """Runs a set of children as one unit; a test can drive it without signals."""

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        cwd: Path = BASE_DIR,
        out: TextSink | None = None,
        stop_grace: float = STOP_GRACE_SECONDS,
    ) -> None:
        self.env = dict(env)
        self.cwd = cwd
        self.out = out or sys.stdout
        self.stop_grace = stop_grace
        self.children: list[Child] = []
        self.stop_requested = threading.Event()
        self._out_lock = threading.Lock()
        self._pumps: list[threading.Thread] = []

    def add(self, child: Child) -> Child:
        self.children.append(child)
        return child

    def say(self, text: str) -> None:
        with self._out_lock:
            self.out.write(text if text.endswith("\n") else text + "\n")
            self.out.flush()

    # --- one-shot commands and children ------------------------------------------------

    def run_once(self, name: str, argv: Sequence[str]) -> int:
        """Run a command to completion with prefixed output; stop early if asked to."""
        process, pump = self._spawn(Child(name=name, argv=list(argv)))
        while process.poll() is None:
            if self.stop_requested.wait(0.2):
                self._terminate([process])
        pump.join(timeout=2)
        return process.returncode

    def start(self) -> None:
        for child in self.children:
            child.process, _ = self._spawn(child)

    def _spawn(self, child: Child) -> tuple[subprocess.Popen[bytes], threading.Thread]:
        # Own process group: a terminal Ctrl-C reaches only us, and stop() can signal a
        # child together with its own children (runserver, celery's pool).
        process = subprocess.Popen(
            child.argv,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            process_group=0,
        )
        pump = threading.Thread(
            target=self._pump, args=(child, process), name=f"out-{child.name}", daemon=True
        )
        pump.start()
        self._pumps.append(pump)
        return process, pump

    def _pump(self, child: Child, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        width = max([len(c.name) for c in self.children] + [len(child.name), 6])
        for raw in iter(process.stdout.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if child.ready_line and child.ready_line in line:
                child.saw_ready_line.set()
            self.say(f"{child.name:>{width}} | {line}")

    def _join_pumps(self) -> None:
        for pump in self._pumps:
            pump.join(timeout=2)
        self._pumps = [pump for pump in self._pumps if pump.is_alive()]

    # --- readiness and watching --------------------------------------------------------

    def dead_child(self) -> Child | None:
        for child in self.children:
            if child.process is not None and child.process.poll() is not None:
                return child
        return None

    def _failure(self, child: Child) -> ChildFailed:
        assert child.process is not None
        code = child.process.returncode
        how = (
            f"was killed by {signal.Signals(-code).name}"
            if code < 0
            else f"exited with code {code}"
        )
        return ChildFailed(f"{child.name} {how}; stopped the demo (its output is above)")

    def wait_ready(self, timeout: float = READY_TIMEOUT_SECONDS) -> None:
        """Block until every child is ready; raise ``ChildFailed`` if one dies or times out."""
        deadline = time.monotonic() + timeout
        for child in self.children:
            while not _is_ready(child):
                dead = self.dead_child()
                if dead is not None:
                    raise self._failure(dead)
                if self.stop_requested.is_set():
                    return
                if time.monotonic() > deadline:
                    raise ChildFailed(
                        f"{child.name} was not ready after {timeout:.0f} s "
                        f"({_describe_ready(child)})"
                    )
                time.sleep(0.2)

    def watch(self) -> None:
        """Block until a stop is requested (return) or a child dies (``ChildFailed``)."""
        while not self.stop_requested.wait(0.5):
            dead = self.dead_child()
            if dead is not None:
                raise self._failure(dead)

    def request_stop(self) -> None:
        self.stop_requested.set()

    # --- stopping ----------------------------------------------------------------------

    def stop(self) -> None:
        """Stop every child: SIGTERM, then SIGKILL to its process group after the grace period."""
        self.stop_requested.set()
        self._terminate([c.process for c in self.children if c.process is not None])
        self._join_pumps()

    def _terminate(self, processes: list[subprocess.Popen[bytes]]) -> None:
        # SIGTERM goes to the child alone: celery then shuts its pool down in order (a
        # group-wide SIGTERM would kill pool processes mid-task). SIGKILL goes to the whole
        # group, for a child that ignored SIGTERM and for anything it left behind.
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_grace
        while any(p.poll() is None for p in processes) and time.monotonic() < deadline:
            time.sleep(0.1)
        for process in processes:
            _signal_group(process, signal.SIGKILL)
            process.wait()

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _signal_group(process: subprocess.Popen[bytes], signum: signal.Signals) -> None:
    # The group id is the child's pid, which the kernel does not reuse while the group
    # has members, so this cannot hit an unrelated process.
    with contextlib.suppress(ProcessLookupError):  # the group is empty
        os.killpg(process.pid, signum)


def _describe_ready(child: Child) -> str:
    if child.ready_url:
        return f"no HTTP 200 from {child.ready_url}"
    if child.ready_port:
        return f"nothing listening on 127.0.0.1:{child.ready_port}"
    return f"no {child.ready_line!r} in its output"


def _is_ready(child: Child) -> bool:
    if child.ready_url:
        return _http_ok(child.ready_url)
    if child.ready_port:
        return port_answers(child.ready_port)
    if child.ready_line:
        return child.saw_ready_line.is_set()
    return True


def port_answers(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _http_ok(url: str) -> bool:
    # Loopback health URLs only, so plain http.client (no redirects, no proxies).
    rest = url.removeprefix("http://")
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    conn = http.client.HTTPConnection(host, int(port or 80), timeout=2)
    try:
        conn.request("GET", "/" + path)
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


# --- the demo stack -----------------------------------------------------------------------


@dataclass(frozen=True)
class DemoPorts:
    proxy: int = 8000
    portal: int = 8001
    zero: int = 8790
    slack: int = 8791
    oncall: int = 8792
    core: int = 8793

    def all(self) -> dict[str, int]:
        return {
            "proxy": self.proxy,
            "portal": self.portal,
            "zero": self.zero,
            "slack": self.slack,
            "oncall": self.oncall,
            "core": self.core,
        }


def demo_environment(
    ports: DemoPorts, data_dir: Path, base_env: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The children's environment: ``base_env`` (default: ours) plus the demo settings.

    Storage (database, broker, secret key) is kept when the caller set it; everything
    that wires the parts together (JWKS, audience, Zero simulator, groups) is forced,
    because a stray value from the shell would make the demo talk to something else.
    """
    env = dict(os.environ if base_env is None else base_env)
    env.setdefault("DATABASE_URL", f"sqlite:///{data_dir / 'demo.sqlite3'}")
    if not env.get("CELERY_BROKER_URL") and not env.get("REDIS_URL"):
        env["CELERY_BROKER_URL"] = "filesystem://"
    env.setdefault("BROKER_DATA_DIR", str(data_dir / "broker"))
    env.setdefault("CELERY_BEAT_SCHEDULE_FILENAME", str(data_dir / "celerybeat-schedule"))
    if not env.get("SECRET_KEY") and not env.get("SECRET_KEY_FILE"):
        # Stable across restarts of the demo, so browser sessions survive them.
        env["SECRET_KEY_FILE"] = str(data_dir / "secret-key")
    # *_FILE wins over the plain variable in settings; drop it where we force the value.
    for name in (
        "API_USER_TOKEN_FILE",
        "POMERIUM_JWT_ISSUER",
        "SLACK_BOT_TOKEN_FILE",
        "SLACK_SIGNING_SECRET_FILE",
        "PAGERDUTY_TOKEN_FILE",
        "POMERIUM_SHARED_SECRET_FILE",
        "POMERIUM_CORE_URL",
    ):
        env.pop(name, None)
    env.update(
        {
            "DEBUG": "true",
            "PYTHONUNBUFFERED": "1",
            "LOG_FORMAT": "text",
            "JWKS_ENDPOINT": f"http://127.0.0.1:{ports.proxy}/.well-known/pomerium/jwks.json",
            "POMERIUM_JWT_AUDIENCE": ROUTE_HOST,
            "PORTAL_URL": f"http://{ROUTE_HOST}:{ports.proxy}",
            "CSRF_TRUSTED_ORIGINS": (
                f"http://{ROUTE_HOST}:{ports.proxy},http://127.0.0.1:{ports.proxy}"
            ),
            "ZERO_API_URL": f"http://127.0.0.1:{ports.zero}/api/v0",
            "API_USER_TOKEN": ZERO_API_TOKEN,
            # The story is the grant going live: a stray "false" would silently stop syncing.
            "ZERO_SYNC_ENABLED": "true",
            "ORGANIZATION_ID": ZERO_ORGANIZATION_ID,
            # No CLUSTER_ID: both clusters have a name, staging is where resources go
            # unless they name another.
            "CLUSTER_ID": "",
            "ZERO_CLUSTERS": ",".join(f"{name}={cid}" for name, cid in ZERO_CLUSTERS.items()),
            "ZERO_DEFAULT_CLUSTER": ZERO_DEFAULT_CLUSTER,
            "PORTAL_ADMIN_GROUPS": "portal-admins",
            "PORTAL_AUDITOR_GROUPS": "compliance",
            "PORTAL_APPROVER_GROUPS": "approvers",
            "EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend",
            "SLACK_BOT_TOKEN": SLACK_BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SLACK_SIGNING_SECRET,
            "SLACK_API_URL": f"http://127.0.0.1:{ports.slack}/api",
            "PAGERDUTY_TOKEN": PAGERDUTY_TOKEN,
            "PAGERDUTY_API_URL": f"http://127.0.0.1:{ports.oncall}",
            # Beside the two Zero clusters, a Pomerium Core (the stand-in) named "edge".
            "POMERIUM_TARGETS": f"{CORE_TARGET}=core:http://127.0.0.1:{ports.core}",
            "POMERIUM_SHARED_SECRET": DEV_SHARED_SECRET,
        }
    )
    return env


def prepare_data_dir(data_dir: Path) -> None:
    """Create the demo's folders (the filesystem broker needs its own) and secret key."""
    for path in (data_dir, data_dir / "broker" / "queue", data_dir / "broker" / "processed"):
        path.mkdir(parents=True, exist_ok=True)
    key_file = data_dir / "secret-key"
    if not key_file.exists():
        key_file.write_text(os.urandom(32).hex(), encoding="utf-8")
        key_file.chmod(0o600)


def celery_command() -> list[str]:
    """The venv's ``celery`` script next to our interpreter, else ``python -m celery``."""
    script = Path(sys.executable).with_name("celery")
    return [str(script)] if script.exists() else [sys.executable, "-m", "celery"]


def demo_children(ports: DemoPorts, *, base_dir: Path = BASE_DIR) -> list[Child]:
    """The Zero, Core, Slack and on-call stand-ins, portal, worker with embedded beat, and the
    sign-in proxy, in start order."""
    python = sys.executable
    # Options are written as one string per child for readability; no value has spaces.
    zero = f"--port {ports.zero} --api-token {ZERO_API_TOKEN} --org {ZERO_ORGANIZATION_ID}"
    zero += f" --cluster {ZERO_CLUSTERS['staging']} --namespace {ZERO_NAMESPACES['staging']}"
    zero += f" --extra-cluster {ZERO_CLUSTERS['production']}:{ZERO_NAMESPACES['production']}"
    proxy = f"--port {ports.proxy} --upstream http://127.0.0.1:{ports.portal}"
    proxy += f" --host-name {ROUTE_HOST}"
    worker = "-A jitportal worker -B --loglevel INFO --concurrency 2"
    slack = f"--port {ports.slack} --bot-token {SLACK_BOT_TOKEN}"
    slack += f" --signing-secret {SLACK_SIGNING_SECRET} --channel {SLACK_CHANNEL}:access-approvals"
    slack += f" --interactivity-url http://127.0.0.1:{ports.portal}/slack/interactions"
    for identity in DEMO_IDENTITIES:
        slack += f" --person {identity.slack_id}:{identity.key}:{identity.email}"
    core = f"--port {ports.core} --route {CORE_ROUTE}={CORE_ROUTE_FROM}"
    dave = next(i for i in DEMO_IDENTITIES if i.key == "dave")
    oncall = f"--port {ports.oncall} --pagerduty-token {PAGERDUTY_TOKEN}"
    oncall += f" --pagerduty-schedule {PAGERDUTY_SCHEDULE}:PDAVE01:Dave:{dave.email}"
    return [
        Child(
            name="zero",
            argv=[python, "-m", "devtools.zerosim.simulator", *zero.split()],
            ready_port=ports.zero,
        ),
        # The Core stand-in serves the public test secret (never printed) by default.
        Child(
            name="core",
            argv=[python, "-m", "devtools.coresim", *core.split()],
            ready_port=ports.core,
        ),
        Child(
            name="slack",
            argv=[python, "-m", "devtools.slacksim.simulator", *slack.split()],
            ready_port=ports.slack,
        ),
        Child(
            name="oncall",
            argv=[python, "-m", "devtools.oncallsim.simulator", *oncall.split()],
            ready_port=ports.oncall,
        ),
        Child(
            name="portal",
            argv=[
                python,
                str(base_dir / "manage.py"),
                "runserver",
                f"127.0.0.1:{ports.portal}",
                "--noreload",
            ],
            ready_url=f"http://127.0.0.1:{ports.portal}/healthz",
        ),
        # celery logs "celery@<host> ready." once it consumes; it has no port to probe.
        Child(name="worker", argv=[*celery_command(), *worker.split()], ready_line=" ready."),
        Child(
            name="proxy",
            argv=[python, "-m", "devtools.demo.proxy", *proxy.split()],
            ready_port=ports.proxy,
        ),
    ]
