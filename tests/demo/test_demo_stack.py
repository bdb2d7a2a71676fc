"""The real demo stack on spare ports: the portal accepts the proxy's assertions, and only them.

This starts what ``run_demo`` starts (simulator, portal, worker with beat, proxy) with the
same supervisor and environment, in a temporary data folder, then signs in through the
proxy like a browser. It needs no Django test database: the stack migrates its own SQLite.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

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
STACK_ENV: dict[str, dict[str, str]] = {}  # the running stack's environment, for seeding


def get(
    port: int, path: str, cookie: str = "", method: str = "GET", body: str = ""
) -> tuple[int, http.client.HTTPMessage, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Host": f"localhost:{port}"}
    if cookie:
        headers["Cookie"] = cookie
    if body:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    try:
        conn.request(method, path, body=body or None, headers=headers)
        response = conn.getresponse()
        return response.status, response.msg, response.read().decode("utf-8", "replace")
    finally:
        conn.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DemoPorts, io.StringIO]]:
    missing = missing_parts()
    if missing:
        pytest.skip(f"demo parts not there yet: {missing}")
    data_dir = tmp_path_factory.mktemp("demo-data")
    ports = DemoPorts(*free_ports(5))
    # The stack keeps its own storage, whatever database or broker the test run uses.
    base_env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "SECRET_KEY")
    }
    prepare_data_dir(data_dir)
    out = io.StringIO()
    STACK_ENV["env"] = demo_environment(ports, data_dir, base_env)
    supervisor = Supervisor(STACK_ENV["env"], out=out)
    try:
        code = supervisor.run_once(
            "migrate", [sys.executable, str(BASE_DIR / "manage.py"), "migrate", "--noinput"]
        )
        assert code == 0, out.getvalue()
        for child in demo_children(ports):
            supervisor.add(child)
        supervisor.start()
        supervisor.wait_ready(timeout=90)
        yield ports, out
    finally:
        supervisor.stop()


def sign_in(ports: DemoPorts, key: str) -> str:
    _, _, page = get(ports.proxy, "/.pomerium/sign_in")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token, page
    status, headers, _ = get(
        ports.proxy,
        "/.pomerium/sign_in",
        method="POST",
        body=f"csrf_token={token.group(1)}&identity={key}&next=/",
    )
    assert status == 302
    return "; ".join(c.split(";", 1)[0] for c in headers.get_all("Set-Cookie") or [])


def test_portal_signs_in_the_person_the_proxy_asserts(stack):
    ports, out = stack
    cookie = sign_in(ports, "alice")

    status, _, page = get(ports.proxy, "/", cookie=cookie)

    assert status == 200, out.getvalue()[-3000:]
    assert "Alice Requester" in page


def test_portal_refuses_requests_that_bypass_the_proxy(stack):
    ports, _ = stack

    status, _, _ = get(ports.portal, "/")

    assert status == 403


def test_health_endpoint_answers_without_an_assertion(stack):
    ports, _ = stack

    status, _, body = get(ports.portal, "/healthz")

    assert (status, body) == (200, "ok\n")


def test_simulator_accepts_the_token_the_portal_is_given(stack):
    ports, _ = stack
    env = demo_environment(ports, Path("unused"), {})

    def exchange(token: str) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", ports.zero, timeout=10)
        try:
            body = json.dumps({"refreshToken": token})
            conn.request("POST", "/api/v0/token", body, {"Content-Type": "application/json"})
            return conn.getresponse().status
        finally:
            conn.close()

    assert env["ZERO_API_URL"] == f"http://127.0.0.1:{ports.zero}/api/v0"
    assert exchange(env["API_USER_TOKEN"]) == 200
    assert exchange("wrong") == 401


def test_the_seeded_demo_writes_to_both_clusters(stack):
    """Seeded as run_demo seeds it: Grafana's policy lands in staging only, the production
    resources' in production only."""
    import subprocess
    import time

    ports, _ = stack
    env = STACK_ENV["env"]
    assert env["ZERO_CLUSTERS"] == "staging=demo-staging,production=demo-production"
    seeded = subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), "seed_demo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert seeded.returncode == 0, seeded.stdout + seeded.stderr

    def placed() -> dict[str, set[str]]:
        _, _, body = get(ports.zero, "/_sim/state")
        clusters = json.loads(body)["clusters"]
        return {c["clusterId"]: {p["name"] for p in c["policies"]} for c in clusters}

    wanted = {"demo-staging": {"jit-grafana-admin"}, "demo-production": {"jit-billing-admin"}}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = placed()
        if all(names <= found[cluster] for cluster, names in wanted.items()):
            break
        time.sleep(0.5)
    found = placed()
    # The staging cluster holds Grafana and the demo's on-call Incident console.
    assert found["demo-staging"] <= {"jit-grafana-admin", "jit-incident-console"}, found
    assert found["demo-production"] >= {"jit-billing-admin"}, found
    assert found["demo-production"] <= {"jit-billing-admin", "jit-prod-db"}, found
