"""The installed `jit` against the real demo stack (simulator, portal, worker, sign-in proxy).

People sign in the way they would: `jit login` prints a sign-in URL, the test plays the
browser (picks the identity on the proxy's page, follows the redirect to the CLI's
loopback callback), and the CLI stores the session. Everything after that is `jit`
talking to the portal through the proxy, exactly as in `make demo`.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

import pytest

from devtools.demo.supervisor import DemoPorts
from tests.cli.inprocess import Background, Ran, run_jit
from tests.support.demo_stack import DemoStack

pytestmark = pytest.mark.slow

JIT = str(Path(sys.executable).with_name("jit"))
TZ = "Europe/Berlin"


@pytest.fixture(scope="module")
def demo(demo_stack: DemoStack) -> DemoPorts:
    """The shared demo stack (``tests.support.demo_stack``): migrated and seeded."""
    return demo_stack.ports


class Person:
    """One person's terminal: their own config directory, so their own stored session.

    ``jit`` runs in this process (``jitcli.main.main``); ``installed_jit`` runs the console
    script, for the one test that proves it works against the real stack.
    """

    def __init__(self, home: Path, ports: DemoPorts) -> None:
        self.home = home
        self.ports = ports

    def jit(self, *args: str) -> Ran:
        return run_jit(*args, home=self.home, tz=TZ)

    def installed_jit(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "XDG_CONFIG_HOME": str(self.home), "TZ": TZ}
        env.pop("JIT_URL", None)
        return subprocess.run(
            [JIT, *args], capture_output=True, text=True, env=env, timeout=60, check=False
        )

    def jit_json(self, *args: str) -> Any:
        result = self.jit(*args, "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def login(self, key: str) -> Ran:
        """`jit login`, with the test as the browser that signs in as ``key``."""
        login = Background(
            "login", f"http://localhost:{self.ports.proxy}", "--no-browser", home=self.home
        )
        url = login.line_starting("http")
        if url:
            callback = browser_sign_in(self.ports.proxy, url, key)
            with urllib.request.urlopen(callback, timeout=10) as answer:
                signed_in = b"Signed in" in answer.read()
        result = login.finish()
        assert url, "jit login printed no sign-in URL: " + result.stderr
        assert signed_in
        return result


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
    waited = alice.jit("wait", str(req["id"]), "--timeout", "2m", "--interval", "0.5s")

    assert f"{req['id']} " in pending.stdout and "alice@example.com" in pending.stdout
    assert approved.returncode == 0, approved.stderr
    assert waited.returncode == 0, waited.stderr
    assert "Allowed now, until" in waited.stdout
    assert evaluate(demo, "alice@example.com") is True


def test_login_stores_a_private_session_for_its_portal(alice):
    path = alice.home / "jit" / "session.json"
    stored = json.loads(path.read_text())
    origin = f"http://localhost:{alice.ports.proxy}"

    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert (stored["current"], list(stored["sessions"])) == (origin, [origin])
    assert stored["sessions"][origin]["url"] == origin


def test_the_installed_script_uses_the_stored_session(alice):
    """The one subprocess flow: the console script reads the session `jit login` stored."""
    result = alice.installed_jit("status")

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].split()[:3] == ["GRANT", "RESOURCE", "STATE"]
    assert "grafana-admin" in result.stdout


def test_tables_show_local_times(alice):
    result = alice.jit("status")

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].split() == [
        "GRANT", "RESOURCE", "STATE", "ACCESS", "FROM", "UNTIL", "LEFT",
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


def open_grants(person: Person) -> list[dict[str, Any]]:
    return list(person.jit_json("status")["grants"])


def open_grant(person: Person, resource: str) -> dict[str, Any]:
    return next(g for g in open_grants(person) if g["resource"] == resource)


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_resources_show_durations_and_flags(alice):
    result = alice.jit("resources")

    assert result.returncode == 0, result.stderr
    header, *lines = result.stdout.splitlines()
    assert header.split() == ["RESOURCE", "NAME", "DURATIONS", "APPROVALS", "FLAGS"]
    rows = {line.split()[0]: line for line in lines}
    assert {"grafana-admin", "prod-db", "billing-admin"} <= set(rows)
    assert "1h,4h,8h" in rows["grafana-admin"] and "extends grant" in rows["grafana-admin"]
    assert "ticket, schedulable" in rows["prod-db"]


def _in_the_next_prod_window() -> str:
    """Tomorrow or the next weekday, 10:00 Berlin: the prod DB takes "now" only in its
    weekday window, so the request asks for a start inside the next one."""
    berlin = ZoneInfo("Europe/Berlin")
    day = datetime.now(berlin) + timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day.replace(hour=10, minute=0, second=0, microsecond=0).isoformat()


def test_a_partly_approved_request_can_still_be_cancelled(alice, bob):
    req = alice.jit_json(
        "request", "prod-db", "--for", "30m", "--reason", "Read the slow query log",
        "--ticket", "INC-7", "--at", _in_the_next_prod_window(),
    )  # fmt: skip
    approved = bob.jit("approve", str(req["id"]), "--note", "fine by me")
    pending = bob.jit("pending")
    cancelled = alice.jit("cancel", str(req["id"]))
    shown = alice.jit("status", str(req["id"]))
    again = alice.jit("cancel", str(req["id"]))

    assert (req["state"], req["approvals_required"]) == ("pending", 2)
    assert approved.stdout == f"Approval recorded for request {req['id']}: 1/2 approvals.\n"
    mine = next(line for line in pending.stdout.splitlines() if line.startswith(f"{req['id']} "))
    assert "alice@example.com" in mine and "1/2 (you)" in mine and "30m" in mine
    assert cancelled.returncode == 0, cancelled.stderr
    assert shown.stdout == f"Request {req['id']} (new) for Prod DB console: Cancelled\n"
    assert (again.returncode, again.stderr.count("\n")) == (5, 1)


def test_an_approver_moves_the_end_and_the_owner_asks_for_more(alice, bob):
    grant = open_grant(alice, "grafana-admin")
    gid = f"g{grant['id']}"  # requests and grants are numbered apart: say which

    no_reason = bob.jit("extend", gid, "--for", "30m")
    moved = bob.jit_json("extend", gid, "--for", "30m", "--reason", "Finish the rule migration")
    no_length = alice.jit("extend", gid)
    asked = alice.jit_json("extend", gid, "--for", "1h", "--reason", "Still tuning the rules")
    decided = bob.jit("approve", str(asked["id"]), "--for", "30m")

    assert (no_reason.returncode, no_reason.stderr) == (
        2,
        "jit: Extending someone's grant needs --reason.\n",
    )
    assert instant(moved["expires_at"]) == instant(grant["expires_at"]) + timedelta(minutes=30)
    assert (no_length.returncode, no_length.stderr) == (2, "jit: Say how much longer: --for 30m.\n")
    assert (asked["kind"], asked["state"]) == ("extension", "pending")
    assert decided.returncode == 0, decided.stderr
    assert f"Request {asked['id']} (extension) for Grafana admin: Approved" in decided.stdout
    after = open_grant(alice, "grafana-admin")
    assert instant(after["expires_at"]) == instant(moved["expires_at"]) + timedelta(minutes=30)


def test_an_approver_lists_the_grants_of_the_resources_they_approve(alice, bob):
    grafana = open_grant(alice, "grafana-admin")
    deadline = time.monotonic() + 60
    while True:  # the extension just before is written; Pomerium confirms it shortly
        listed = bob.jit("grants", "--resource", "grafana-admin")
        assert listed.returncode == 0, listed.stderr
        row = next(
            line for line in listed.stdout.splitlines() if line.startswith(f"{grafana['id']} ")
        )
        if "Waiting for Pomerium" not in row or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    as_requester = alice.jit("grants")

    assert "alice@example.com" in row and "Allowed now, until" in row
    assert as_requester.returncode == 0
    assert {line.split()[2] for line in as_requester.stdout.splitlines()[1:]} == {
        "alice@example.com"
    }  # a requester sees only their own


def test_a_revoked_grant_cannot_be_ended_and_a_scheduled_one_can(alice, bob):
    grafana = open_grant(alice, "grafana-admin")
    billing = open_grant(alice, "billing-admin")  # the seeded window tomorrow morning

    # By the request's id, the number `jit request` printed: jit says which grant it took.
    revoked = bob.jit("revoke", f"r{grafana['request_id']}", "--reason", "Done for today")
    end_revoked = alice.jit("end", f"g{grafana['id']}")
    ended = alice.jit("end", f"g{billing['id']}")

    assert revoked.returncode == 0, revoked.stderr
    assert revoked.stderr.startswith(
        f"Request {grafana['request_id']} → grant {grafana['id']} (Grafana admin, alice@"
    )
    assert revoked.stdout.startswith(f"Grant {grafana['id']} on Grafana admin: revoked, Ended (")
    assert (end_revoked.returncode, end_revoked.stderr.count("\n")) == (5, 1)
    assert billing["state"] == "scheduled"
    assert ended.returncode == 0, ended.stderr
    assert ended.stdout.startswith(f"Grant {billing['id']} on Billing admin: ")
    assert open_grants(alice) == []


def test_logout_forgets_the_session(alice):
    """Last in this module: alice is signed out afterwards."""
    result = alice.jit("logout")
    after = alice.jit("status")

    assert (result.returncode, result.stdout) == (
        0,
        f"Signed out of http://localhost:{alice.ports.proxy}.\n",
    )
    assert (after.returncode, after.stderr) == (
        3,
        "jit: Not signed in, or your Pomerium session expired: run `jit login`.\n",
    )
