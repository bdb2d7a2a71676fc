"""The image and the compose stack, built and started for real, with a request sent through.

Builds the image, runs ``docker compose up --wait`` on docker-compose.yaml plus the test-only
``compose.test.yaml`` and ``stack.env`` (every service but pomerium), and plays Pomerium from
the host: the dev sign-in proxy on 127.0.0.1 forwards to web's loopback-published port and
signs real ES256 assertions; a JWKS stand-in serves the proxy's keys and the Zero simulator
plays the Zero API, both on the host's bridge address (``host.docker.internal`` inside).

Marked ``docker``: skipped when no engine answers, failing in CI (``require_service``).
Run it alone with ``make test PYTEST_ARGS="tests/deploy -m docker"``.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest

from devtools.demo.proxy import JWKS_PATH, DevSignInProxy
from tests.conftest import require_service

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PROJECT = "jitportal-deploytest"
IMAGE = "jitportal:deploytest"
ENV_FILE = HERE / "stack.env"
COMPOSE = [
    "docker",
    "compose",
    "-p",
    PROJECT,
    "-f",
    str(ROOT / "docker-compose.yaml"),
    "-f",
    str(HERE / "compose.test.yaml"),
    "--env-file",
    str(ENV_FILE),
]
SERVICES = ("migrate", "web", "worker", "notifier", "beat", "postgres", "redis")
RESOURCE_SLUG = "deploy-check"
RESOURCES_YAML = f"""\
resources:
  - slug: {RESOURCE_SLUG}
    name: Deploy check
    description: Requested by the deploy test.
    approver_groups: [approvers]
    duration_choices: [60]
    max_duration_minutes: 60
"""


def stack_values() -> dict[str, str]:
    values = {}
    for line in ENV_FILE.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value
    return values


VALUES = stack_values()
PORTAL_HOST = VALUES["PORTAL_HOST"]


# --- the engine and the commands ------------------------------------------------------------


def engine_problem() -> str:
    """Why no engine can be used, or "" when one answers with the compose plugin."""
    if shutil.which("docker") is None:
        return "no docker command on PATH"
    for argv in (["docker", "info", "--format", "{{.ServerVersion}}"], [*COMPOSE[:2], "version"]):
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        except subprocess.TimeoutExpired:
            return f"`{' '.join(argv)}` did not answer in 30 s"
        if done.returncode != 0:
            return f"`{' '.join(argv)}` failed: {done.stderr.strip()[-300:]}"
    return ""


def run(
    argv: list[str],
    *,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    stdin: str | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        argv,
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and done.returncode != 0:
        pytest.fail(
            f"`{' '.join(argv)}` exited {done.returncode}:\n{done.stdout[-3000:]}\n"
            f"{done.stderr[-3000:]}"
        )
    return done


def wait_for(what: str, probe: Callable[[], Any], *, attempts: int = 60, pause: float = 1.0) -> Any:
    """``probe()`` until it returns something truthy, at most ``attempts`` times."""
    for _ in range(attempts):
        result = probe()
        if result:
            return result
        time.sleep(pause)
    pytest.fail(f"gave up waiting for {what} after {attempts} attempts")


# --- what plays Pomerium and Zero on the host ------------------------------------------------


class JwksStandIn:
    """Serves the dev proxy's key set where the containers can fetch it."""

    def __init__(self, host: str, keys: Callable[[], dict[str, Any]]) -> None:
        self.fetches = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != JWKS_PATH:
                    self.send_error(404)
                    return
                outer.fetches += 1
                body = json.dumps(keys()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Cache-Control", "max-age=60")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class Simulator:
    """``python -m devtools.zerosim.simulator`` on the host, driven only by its options and HTTP."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "devtools.zerosim.simulator",
                "--host",
                host,
                "--port",
                "0",
                "--api-token",
                VALUES["API_USER_TOKEN"],
                "--org",
                VALUES["ORGANIZATION_ID"],
                "--cluster",
                VALUES["CLUSTER_ID"],
                "--namespace",
                "ns-deploy",
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        found = re.search(r"http://[^\s]+/api/v0", line)
        if not found:
            self.stop()
            pytest.fail(f"the Zero simulator did not print its URL: {line!r}")
        self.url = found.group(0)
        self.port = int(urlsplit(self.url).port or 0)

    def call(self, method: str, path: str, body: Any = None, token: str = "") -> Any:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            conn.request(method, "/api/v0" + path, json.dumps(body) if body else None, headers)
            response = conn.getresponse()
            data = response.read()
            assert response.status in (200, 201), (response.status, data[:500])
            return json.loads(data)
        finally:
            conn.close()

    def policies(self) -> list[dict[str, Any]]:
        """The namespace's policies, read through Zero's own API as any client would."""
        token = self.call("POST", "/token", {"refreshToken": VALUES["API_USER_TOKEN"]})["idToken"]
        org = VALUES["ORGANIZATION_ID"]
        result = self.call(
            "GET", f"/organizations/{org}/policies?namespaceId=ns-deploy", token=token
        )
        assert isinstance(result, list)
        return result

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        if self.process.stdout:
            self.process.stdout.close()


@dataclass
class Browser:
    """One person's cookies against the proxy, sent by hand.

    Django marks its cookies Secure (production settings) and the stand-in speaks http, so a
    cookie jar would withhold them; the portal only reads the Cookie header.
    """

    port: int
    cookies: dict[str, str] = field(default_factory=dict)

    def request(
        self, method: str, path: str, form: dict[str, str] | None = None
    ) -> tuple[int, http.client.HTTPMessage, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        headers = {"Host": PORTAL_HOST}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = urlencode(form) if form is not None else None
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            text = response.read().decode("utf-8", "replace")
        finally:
            conn.close()
        for header in response.msg.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(header).items():
                if morsel["max-age"] == "0" or not morsel.value:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        return response.status, response.msg, text

    def sign_in(self, identity: str) -> None:
        _, _, page = self.request("GET", "/.pomerium/sign_in")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token, page[:2000]
        status, _, _ = self.request(
            "POST",
            "/.pomerium/sign_in",
            {"csrf_token": token.group(1), "identity": identity, "next": "/"},
        )
        assert status == 302

    def form_token(self, path: str) -> str:
        status, _, page = self.request("GET", path)
        assert status == 200, page[:2000]
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert token, page[:2000]
        return token.group(1)


# --- the stack -------------------------------------------------------------------------------


@dataclass
class Stack:
    env: dict[str, str]
    proxy: DevSignInProxy
    jwks: JwksStandIn
    sim: Simulator
    web_port: int
    started_at: float
    healthz_after: float

    def compose(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return run([*COMPOSE, *args], env=self.env, **kwargs)

    def logs(self, service: str) -> str:
        return self.compose("logs", "--no-color", service, check=False).stdout

    def containers(self) -> dict[str, dict[str, Any]]:
        out = self.compose("ps", "--all", "--format", "json").stdout
        rows = [json.loads(line) for line in out.splitlines() if line.strip()]
        if len(rows) == 1 and isinstance(rows[0], list):  # older compose prints one array
            rows = rows[0]
        return {row["Service"]: row for row in rows}

    def inspect(self, service: str) -> dict[str, Any]:
        container = self.containers()[service]["ID"]
        return json.loads(run(["docker", "inspect", container]).stdout)[0]


def instant(stamp: str) -> datetime:
    """Docker's RFC 3339 time (nanoseconds, trailing zeros trimmed) as a datetime."""
    whole, _, fraction = stamp.removesuffix("Z").partition(".")
    return datetime.fromisoformat(f"{whole}.{fraction[:6]:0<6}+00:00")


def host_gateway_address(env: dict[str, str]) -> str:
    """The address that ``host-gateway`` names inside a container (the host's bridge address)."""
    if os.environ.get("JITPORTAL_DEPLOY_HOST_IP"):
        return os.environ["JITPORTAL_DEPLOY_HOST_IP"]
    done = run(
        [
            "docker",
            "run",
            "--rm",
            "--add-host",
            "host.docker.internal:host-gateway",
            "--entrypoint",
            "python",
            IMAGE,
            "-c",
            "import socket; print(socket.gethostbyname('host.docker.internal'))",
        ],
        env=env,
    )
    return done.stdout.strip()


def published_port(env: dict[str, str]) -> int:
    """web's port on 127.0.0.1 (the test override publishes it on loopback only), or 0."""
    out = run([*COMPOSE, "port", "web", "8000"], env=env, check=False).stdout.strip()
    host, _, port = out.rpartition(":")
    assert host in ("", "127.0.0.1"), out
    return int(port) if port.isdigit() else 0


def healthz(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def interpolated_names() -> set[str]:
    """Every ``${NAME}`` the compose files read: the test's values must win over the shell's."""
    text = (ROOT / "docker-compose.yaml").read_text() + (HERE / "compose.test.yaml").read_text()
    return set(re.findall(r"\$\{(\w+)", text))


@pytest.fixture(scope="module")
def engine_env() -> dict[str, str]:
    require_service("Docker engine", not (problem := engine_problem()), problem)
    dropped = interpolated_names()
    return {
        name: value
        for name, value in os.environ.items()
        if name not in dropped and not name.startswith("COMPOSE_")
    }


@pytest.fixture(scope="module")
def image(engine_env: dict[str, str]) -> str:
    """The image as an operator builds it: ``docker compose build`` of the production file."""
    env = {**engine_env, "ZERO_API_URL": "http://unused", "JWKS_ENDPOINT": "http://unused"}
    run([*COMPOSE, "build", "web"], env=env, timeout=900)
    return IMAGE


@pytest.fixture(scope="module")
def stack(engine_env: dict[str, str], image: str) -> Iterator[Stack]:
    base = {**engine_env, "ZERO_API_URL": "http://unused", "JWKS_ENDPOINT": "http://unused"}
    run([*COMPOSE, "down", "--volumes", "--remove-orphans"], env=base, timeout=180)
    host_ip = host_gateway_address(base)
    sim: Simulator | None = None
    jwks: JwksStandIn | None = None
    up: subprocess.Popen[str] | None = None
    # web fetches the keys only when the first signed request arrives, after the proxy exists.
    proxies: list[DevSignInProxy] = []
    env = base
    try:
        sim = Simulator(host_ip)
        jwks = JwksStandIn(host_ip, lambda: proxies[0].jwks())
        env = {
            **base,
            "ZERO_API_URL": sim.url.replace(host_ip, "host.docker.internal"),
            "JWKS_ENDPOINT": f"http://host.docker.internal:{jwks.port}{JWKS_PATH}",
        }
        started = time.monotonic()
        up = subprocess.Popen(
            [*COMPOSE, "up", "--wait", "--wait-timeout", "300", "--no-build", *SERVICES],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        # While compose waits: find web's published port, then time its first /healthz answer.
        web_port = 0
        healthz_after = 0.0
        while up.poll() is None:
            if not web_port:
                web_port = published_port(env)
            elif not healthz_after and healthz(web_port):
                healthz_after = time.monotonic() - started
            time.sleep(0.5)
        output = up.stdout.read() if up.stdout else ""
        if up.returncode != 0:
            logs = run([*COMPOSE, "logs", "--no-color", "--tail", "40"], env=env, check=False)
            pytest.fail(f"compose up --wait exited {up.returncode}:\n{output}\n{logs.stdout}")
        web_port = web_port or published_port(env)
        proxies.append(DevSignInProxy(f"http://127.0.0.1:{web_port}", host_name=PORTAL_HOST))
        proxies[0].start(banner=False)
        yield Stack(env, proxies[0], jwks, sim, web_port, started, healthz_after)
    finally:
        if up is not None and up.poll() is None:
            up.kill()
            up.wait(timeout=30)
        run([*COMPOSE, "down", "--volumes", "--remove-orphans"], env=env, timeout=180, check=False)
        for proxy in proxies:
            proxy.stop()
        if jwks is not None:
            jwks.stop()
        if sim is not None:
            sim.stop()


# --- the stack comes up ----------------------------------------------------------------------


def test_migrate_ran_once_and_the_services_are_healthy(stack: Stack) -> None:
    containers = stack.containers()

    assert "pomerium" not in containers
    migrate = stack.inspect("migrate")["State"]
    assert (migrate["Status"], migrate["ExitCode"]) == ("exited", 0), stack.logs("migrate")
    assert "Applying audit.0002" in stack.logs("migrate")
    for name in ("web", "worker", "notifier", "beat", "postgres", "redis"):
        assert containers[name]["State"] == "running", stack.logs(name)
        assert containers[name]["Health"] == "healthy", stack.logs(name)
    # web, worker and beat started only after migrate had finished.
    for name in ("web", "worker", "notifier", "beat"):
        assert instant(stack.inspect(name)["State"]["StartedAt"]) >= instant(migrate["FinishedAt"])
    print(f"\nweb /healthz answered {stack.healthz_after:.1f} s after `compose up`")


def test_web_starts_without_errors_as_the_app_user(stack: Stack) -> None:
    web_log = stack.logs("web")

    assert "Booting worker" in web_log
    assert not re.search(r"control (server|socket)", web_log, re.IGNORECASE), web_log[-3000:]
    assert "Permission denied" not in web_log
    # The app user may run the code, not change it.
    probe = stack.compose(
        "exec", "-T", "web", "sh", "-c", "id -u; test -w /app/apps && echo writable || echo ro"
    )
    assert probe.stdout.split() == ["10001", "ro"]


def test_beat_sends_the_ticks_and_the_worker_runs_them(stack: Stack) -> None:
    wait_for(
        "beat to send access-tick",
        lambda: "Sending due task access-tick" in stack.logs("beat"),
    )
    wait_for(
        "the worker to run access.tick",
        lambda: re.search(r"Task access\.tick\[[^\]]+\] succeeded", stack.logs("worker")),
    )
    # Each queue has its own worker: notices never share a process with the Zero sync.
    wait_for(
        "the notifier to run notifications.tick",
        lambda: re.search(r"Task notifications\.tick\[[^\]]+\] succeeded", stack.logs("notifier")),
    )
    # (The start-up banner lists every registered task, so look at task runs only.)
    assert not re.search(r"Task notifications\.tick\[", stack.logs("worker"))
    assert not re.search(r"Task access\.tick\[", stack.logs("notifier"))


def test_data_lives_in_the_named_volumes(stack: Stack) -> None:
    mounts = {
        (m["Name"], m["Destination"])
        for name in ("postgres", "redis")
        for m in stack.inspect(name)["Mounts"]
        if m["Type"] == "volume"
    }

    assert mounts == {
        (f"{PROJECT}_postgres-data", "/var/lib/postgresql/data"),
        (f"{PROJECT}_redis-data", "/data"),
    }


# --- a request through the stack -------------------------------------------------------------


def test_check_connectivity_inside_web_prints_ok_lines(stack: Stack) -> None:
    done = stack.compose("exec", "-T", "web", "python", "manage.py", "check_connectivity")
    lines = done.stdout.splitlines()

    assert lines, done.stderr
    assert all(line.startswith("ok ") for line in lines), done.stdout
    names = {line[2:].split(":", 1)[0].strip() for line in lines}
    assert {"Zero token exchange", "JWKS endpoint", "Task broker"} <= names
    assert VALUES["API_USER_TOKEN"] not in done.stdout


def test_portal_refuses_a_request_that_bypasses_the_proxy(stack: Stack) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", stack.web_port, timeout=30)
    try:
        conn.request("GET", "/", headers={"Host": PORTAL_HOST})
        response = conn.getresponse()
        body = response.read().decode()
    finally:
        conn.close()

    assert response.status == 403
    assert "Alice" not in body


def test_a_signed_request_reaches_web_and_an_approval_becomes_a_policy(stack: Stack) -> None:
    stack.compose(
        "exec", "-T", "web", "python", "manage.py", "bootstrap", "/dev/stdin", stdin=RESOURCES_YAML
    )
    alice = Browser(stack.proxy.port)
    alice.sign_in("alice")

    status, _, home = alice.request("GET", "/")
    assert status == 200, home[:2000]
    assert "Alice Requester" in home

    # Bob, the approver, has signed in once: a request nobody could approve is refused when
    # filed, and people count as approvers once the portal has seen them.
    bob = Browser(stack.proxy.port)
    bob.sign_in("bob")
    status, _, _ = bob.request("GET", "/")
    assert status == 200

    token = alice.form_token(f"/requests/new?resource={RESOURCE_SLUG}")
    status, headers, page = alice.request(
        "POST",
        "/requests/new",
        {
            "csrfmiddlewaretoken": token,
            "resource": RESOURCE_SLUG,
            "duration": "60",
            "justification": "deploy test: one request through the stack",
            "ticket": "",
            "start": "now",
            "start_at": "",
            "tz": "UTC",
        },
    )
    assert status == 302, page[:3000]
    request_path = headers["Location"]
    pk = re.fullmatch(r"/requests/(\d+)", request_path)
    assert pk, request_path

    change = f"/admin/access/accessrequest/{pk.group(1)}/change/"
    token = bob.form_token(change)
    status, headers, page = bob.request(
        "POST",
        f"/admin/access/accessrequest/{pk.group(1)}/approve/",
        {"csrfmiddlewaretoken": token, "apply": "yes", "note": "deploy test"},
    )
    assert (status, headers["Location"]) == (302, change), page[:3000]

    def alice_rule() -> dict[str, Any] | None:
        for policy in stack.sim.policies():
            if policy["name"] == f"jit-{RESOURCE_SLUG}" and "alice@example.com" in json.dumps(
                policy["ppl"]
            ):
                return policy
        return None

    policy = wait_for("the grant to reach the Zero simulator", alice_rule)
    # Zero's contract says rule objects, never PPL text.
    ppl = policy["ppl"]
    assert not isinstance(ppl, str)
    rules = ppl if isinstance(ppl, list) else [ppl]
    criteria = [c for rule in rules for c in rule.get("allow", {}).get("and", [])]
    assert {"email": {"is": "alice@example.com"}} in criteria
    assert any("date" in c and {"after", "before"} <= set(c["date"]) for c in criteria)
    # The portal fetched the stand-in's keys instead of trusting anything in the token.
    assert stack.jwks.fetches >= 1


# --- the image holds only what production needs ----------------------------------------------

LISTING = r"""
import importlib.util, json, os, shutil
tree = sorted(
    os.path.relpath(os.path.join(d, n), "/app")
    for d, dirs, files in os.walk("/app")
    for n in dirs + files
)
print(json.dumps({
    "tree": tree,
    "modules": {m: bool(importlib.util.find_spec(m)) for m in (
        "pytest", "pytest_django", "ruff", "mypy", "playwright", "hypothesis", "factory",
        "responses", "django_stubs_ext", "devtools", "gunicorn", "django", "psycopg")},
    "tools": {t: bool(shutil.which(t)) for t in ("gcc", "cc", "g++", "make", "ld", "git")},
    "wheels": os.path.exists("/wheels"),
}))
"""


def test_image_holds_the_app_and_no_tests_dev_tools_or_toolchain(image: str) -> None:
    done = run(["docker", "run", "--rm", "--entrypoint", "python", image, "-c", LISTING])
    found = json.loads(done.stdout)
    tree = found["tree"]
    top = {path.split("/", 1)[0] for path in tree}

    assert top == {"apps", "jitportal", "manage.py", "static", "staticfiles", "templates"}
    assert not [p for p in tree if re.search(r"(^|/)(tests?|bench|devtools)(/|$)", p)]
    assert not [p for p in tree if p.endswith((".pyc", ".sqlite3", ".env"))]
    # The demo and the Zero simulator are dev tools (devtools/): none of it is in the image.
    assert not [p for p in tree if re.search(r"(^|/)(demo|zerosim|sim_\w+\.py|simulator\.py)", p)]
    assert not [p for p in tree if re.search(r"commands/(run_demo|seed_demo|zero_simulator)", p)]
    assert "apps/pomerium/management/commands/check_connectivity.py" in tree
    assert "staticfiles/staticfiles.json" in tree  # collected at build, with the manifest
    assert found["modules"] == {
        **dict.fromkeys(found["modules"], False),
        "gunicorn": True,
        "django": True,
        "psycopg": True,
    }
    assert found["tools"] == dict.fromkeys(found["tools"], False)
    assert found["wheels"] is False


DISTRIBUTIONS = (
    "import importlib.metadata as m, json; "
    "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))"
)


def test_image_pins_what_ci_tested_and_bakes_in_no_secret(image: str) -> None:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        name, _, version = line.partition("==")
        pins[name.lower().replace("_", "-")] = version
    listing = run(["docker", "run", "--rm", "--entrypoint", "python", image, "-c", DISTRIBUTIONS])
    installed = {
        name.lower().replace("_", "-"): version
        for name, version in json.loads(listing.stdout).items()
    }
    config = json.loads(run(["docker", "image", "inspect", image]).stdout)[0]["Config"]
    env_names = {item.split("=", 1)[0] for item in config["Env"]}

    assert installed["django"] == pins["django"]
    assert "pip" not in installed  # the app's virtualenv installs nothing at run time
    assert {n: v for n, v in installed.items() if n in pins and v != pins[n]} == {}
    assert config["User"] == "10001:10001"
    assert not env_names & {"SECRET_KEY", "JWKS_ENDPOINT", "API_USER_TOKEN", "ALLOWED_HOSTS"}
    assert "DEBUG=false" in config["Env"]
    assert config["Cmd"][0] == "gunicorn"
    assert "/healthz" in " ".join(config["Healthcheck"]["Test"])
