"""The real demo stack on spare ports: the portal accepts the proxy's assertions, and only them.

The stack is the shared ``demo_stack`` (what ``run_demo`` starts: the Zero and Core
stand-ins, portal, worker with beat, proxy, with the same supervisor and environment, in a
temporary data folder); the tests sign in through the proxy like a browser. They need no
Django test database: the stack migrates and seeds its own SQLite.
"""

from __future__ import annotations

import http.client
import io
import json
import re
import sys
from pathlib import Path

import pytest

from devtools.demo.supervisor import BASE_DIR, CORE_ROUTE, DemoPorts, demo_environment
from tests.cli.test_jit_demo import Person
from tests.support.demo_stack import DemoStack

pytestmark = pytest.mark.slow


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
def stack(demo_stack: DemoStack) -> tuple[DemoPorts, io.StringIO]:
    """The shared demo stack (``tests.support.demo_stack``): its ports and its output."""
    return demo_stack.ports, demo_stack.log


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


def test_the_seeded_demo_writes_to_both_clusters(stack, demo_stack):
    """Seeded as run_demo seeds it: Grafana's policy lands in staging only, the production
    resources' in production only."""
    import subprocess
    import time

    ports, _ = stack
    env = demo_stack.env
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


# --- the Pomerium Core target beside the two Zero clusters ------------------------------


def test_the_demo_serves_the_edge_resource_on_its_core_target(stack, demo_stack):
    ports, out = stack
    cookie = sign_in(ports, "alice")

    status, _, page = get(ports.proxy, "/requests/new?resource=edge-console", cookie=cookie)

    assert status == 200, out.getvalue()[-3000:]
    assert "Edge router console" in page
    assert demo_stack.env["POMERIUM_TARGETS"] == f"edge=core:http://127.0.0.1:{ports.core}"
    assert [r["id"] for r in demo_stack.core_state()["routes"]] == [CORE_ROUTE]


def test_an_approved_edge_grant_becomes_a_rule_in_core_that_jitportal_closes(
    demo_stack, tmp_path_factory
):
    """Alice asks for the edge console, Bob approves: the real worker writes the rule to the
    Core stand-in and attaches it to the route; the request page says who closes it."""
    ports = demo_stack.ports
    alice = Person(tmp_path_factory.mktemp("edge-alice"), ports)
    bob = Person(tmp_path_factory.mktemp("edge-bob"), ports)
    assert alice.login("alice").returncode == 0 and bob.login("bob").returncode == 0
    assert demo_stack.core_evaluate(CORE_ROUTE, "alice@example.com") == (200, {"allow": False})

    req = alice.jit_json("request", "edge-console", "--for", "30m", "--reason", "Rotate BGP keys")
    approved = bob.jit("approve", str(req["id"]))
    waited = alice.jit("wait", str(req["id"]), "--timeout", "2m", "--interval", "0.5s")

    assert approved.returncode == 0, approved.stderr
    assert waited.returncode == 0, waited.stderr + demo_stack.log_tail()
    assert demo_stack.core_evaluate(CORE_ROUTE, "alice@example.com") == (200, {"allow": True})
    assert demo_stack.core_evaluate(CORE_ROUTE, "bob@example.com") == (200, {"allow": False})
    policy = next(p for p in demo_stack.core_state()["policies"] if p["name"] == "jit-edge-console")
    route = demo_stack.core_state()["routes"][0]
    assert route["policyIds"] == [policy["id"]]
    status, _, page = get(ports.proxy, f"/requests/{req['id']}", cookie=sign_in(ports, "alice"))
    assert status == 200
    assert "Closed by jitportal at" in page
    assert "Closes by itself in Pomerium" not in page


def test_a_zero_grant_page_says_it_closes_by_itself(stack):
    """The stronger guarantee beside it: Dave's seeded on-call Grafana grant (a Zero cluster)."""
    ports, _ = stack
    cookie = sign_in(ports, "dave")
    _, _, home = get(ports.proxy, "/", cookie=cookie)
    ids = sorted(set(re.findall(r'href="/requests/(\d+)"', home)))
    pages = [get(ports.proxy, f"/requests/{i}", cookie=cookie)[2] for i in ids]

    grafana = [p for p in pages if "Grafana admin" in p and "grant-closing" in p]
    assert grafana, home[-3000:]
    assert "Closes by itself in Pomerium at" in grafana[0]
    assert "Closed by jitportal" not in grafana[0]
