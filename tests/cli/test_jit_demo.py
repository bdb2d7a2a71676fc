"""The installed `jit` against the real demo stack (simulator, portal, worker, sign-in proxy).

People sign in the way they would: `jit login` prints a sign-in URL, the test plays the
browser (picks the identity on the proxy's page, follows the redirect to the CLI's
loopback callback), and the CLI stores the session. Everything after that is `jit`
talking to the portal through the proxy, exactly as in `make demo`.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest

from devtools.demo.supervisor import (
    BASE_DIR,
    DemoPorts,
    Supervisor,
    demo_children,
    demo_environment,
    missing_parts,
    prepare_data_dir,
)
from tests.support.processes import free_ports

pytestmark = pytest.mark.slow

JIT = str(Path(sys.executable).with_name("jit"))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoPorts]:
    missing = missing_parts()
    if missing:
        pytest.skip(f"demo parts not there yet: {missing}")
    data_dir = tmp_path_factory.mktemp("jit-demo")
    ports = DemoPorts(*free_ports(3))
    base_env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "SECRET_KEY")
    }
    prepare_data_dir(data_dir)
    out = io.StringIO()  # the children's output, for a failing assertion to show
    supervisor = Supervisor(demo_environment(ports, data_dir, base_env), out=out)
    manage = [sys.executable, str(BASE_DIR / "manage.py")]
    try:
        assert supervisor.run_once("migrate", [*manage, "migrate", "--noinput"]) == 0, (
            out.getvalue()
        )
        assert supervisor.run_once("seed", [*manage, "seed_demo"]) == 0, out.getvalue()
        for child in demo_children(ports):
            supervisor.add(child)
        supervisor.start()
        supervisor.wait_ready(timeout=90)
        yield ports
    finally:
        supervisor.stop()


class Person:
    """One person's terminal: their own config directory, so their own stored session."""

    def __init__(self, home: Path, ports: DemoPorts) -> None:
        self.home = home
        self.ports = ports

    def env(self) -> dict[str, str]:
        env = {**os.environ, "XDG_CONFIG_HOME": str(self.home), "TZ": "Europe/Berlin"}
        env.pop("JIT_URL", None)
        return env

    def jit(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [JIT, *args], capture_output=True, text=True, env=self.env(), timeout=timeout,
            check=False,
        )  # fmt: skip

    def jit_json(self, *args: str) -> object:
        result = self.jit(*args, "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def login(self, key: str) -> subprocess.CompletedProcess[str]:
        """`jit login`, with the test as the browser that signs in as ``key``."""
        process = subprocess.Popen(
            [JIT, "login", f"http://localhost:{self.ports.proxy}", "--no-browser"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env(),
        )  # fmt: skip
        assert process.stderr is not None
        url = ""
        for line in process.stderr:
            if line.strip().startswith("http"):
                url = line.strip()
                break
        assert url, "jit login printed no sign-in URL"
        callback = browser_sign_in(self.ports.proxy, url, key)
        with urllib.request.urlopen(callback, timeout=10) as answer:
            assert b"Signed in" in answer.read()
        stdout, stderr = process.communicate(timeout=30)
        return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def browser_sign_in(proxy_port: int, url: str, key: str) -> str:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection("127.0.0.1", proxy_port, timeout=10)
    conn.request("GET", f"{parts.path}?{parts.query}", headers={"Host": parts.netloc})
    page = conn.getresponse().read().decode()
    fields = dict(re.findall(r'name="(csrf_token|pomerium_redirect_uri)" value="([^"]+)"', page))
    conn.request(
        "POST",
        "/.pomerium/sign_in",
        body=urlencode({**fields, "identity": key}),
        headers={"Host": parts.netloc, "Content-Type": "application/x-www-form-urlencoded"},
    )
    response = conn.getresponse()
    response.read()
    conn.close()
    assert response.status == 302
    return response.headers["Location"]


def evaluate(ports: DemoPorts, email: str) -> bool:
    query = urlencode({"policy": "jit-grafana-admin", "email": email})
    url = f"http://127.0.0.1:{ports.zero}/_sim/evaluate?{query}"
    with urllib.request.urlopen(url, timeout=10) as answer:
        return bool(json.loads(answer.read())["allow"])


@pytest.fixture(scope="module")
def alice(demo: DemoPorts, tmp_path_factory: pytest.TempPathFactory) -> Person:
    person = Person(tmp_path_factory.mktemp("alice-home"), demo)
    result = person.login("alice")
    assert result.returncode == 0, result.stderr
    return person


@pytest.fixture(scope="module")
def bob(demo: DemoPorts, tmp_path_factory: pytest.TempPathFactory) -> Person:
    person = Person(tmp_path_factory.mktemp("bob-home"), demo)
    assert person.login("bob").returncode == 0
    return person


def test_the_demo_story_from_a_terminal(demo, alice, bob):
    """Acceptance: login, request, an approver's approve, then `jit wait` returns 0 once live."""
    assert evaluate(demo, "alice@example.com") is False

    req = alice.jit_json(
        "request", "grafana-admin", "--for", "1h", "--reason", "Tune the alert rules"
    )
    assert isinstance(req, dict) and req["state"] == "pending"
    pending = bob.jit("pending")
    approved = bob.jit("approve", str(req["id"]), "--note", "go ahead")
    waited = alice.jit("wait", str(req["id"]), "--timeout", "2m", "--interval", "0.5", timeout=150)

    assert f"{req['id']} " in pending.stdout and "alice@example.com" in pending.stdout
    assert approved.returncode == 0, approved.stderr
    assert waited.returncode == 0, waited.stderr
    assert "live in Pomerium until" in waited.stdout
    assert evaluate(demo, "alice@example.com") is True


def test_login_stores_a_private_session(alice):
    path = alice.home / "jit" / "session.json"

    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert json.loads(path.read_text())["url"].startswith("http://localhost:")


def test_tables_show_local_times(alice):
    result = alice.jit("status")

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].split() == [
        "GRANT", "RESOURCE", "STATE", "LIVE", "FROM", "UNTIL", "LEFT",
    ]  # fmt: skip
    assert " CET" in result.stdout or " CEST" in result.stdout  # TZ=Europe/Berlin


def test_refusals_have_their_exit_codes(alice, bob):
    again = alice.jit("request", "grafana-admin", "--for", "1h", "--reason", "Tune the rules")
    not_mine = alice.jit("approve", "1")
    missing = alice.jit("status", "99999")

    assert (again.returncode, not_mine.returncode, missing.returncode) == (0, 4, 4)
    extension = json.loads(alice.jit("status", "--json").stdout)["requests"][0]
    assert extension["kind"] == "extension"  # a live grant turns a new request into one
    rejected = bob.jit("reject", str(extension["id"]), "--reason", "one hour is enough")
    waited = alice.jit("wait", str(extension["id"]), "--timeout", "1m")
    assert rejected.returncode == 0
    assert (waited.returncode, "request rejected: one hour is enough" in waited.stdout) == (6, True)
