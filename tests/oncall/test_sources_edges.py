"""The PagerDuty and Opsgenie readers at their edges, over real HTTP: a missing credential, a
refused key, an unknown schedule and an answer that is not what the provider documents each
raise ``Unreachable`` with a reason (on-call auto-approval then fails closed); entries that
name nobody are skipped, never guessed."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from apps.access.oncall import Unreachable
from apps.oncall import pagerduty
from apps.oncall.opsgenie import OpsgenieSource
from apps.oncall.pagerduty import PagerDutySource
from devtools.oncallsim.simulator import OnCallPerson, OnCallSimulator, Schedule

NOW = datetime.now(UTC)
OG_ID = "2c2e3b8c-0000-4000-8000-00000000000a"


@pytest.fixture
def sim(settings: Any) -> Iterator[OnCallSimulator]:
    simulator = OnCallSimulator(pagerduty_token="pd-token-1", opsgenie_key="og-key-1").start()
    settings.PAGERDUTY_TOKEN = "pd-token-1"
    settings.PAGERDUTY_API_URL = simulator.url
    settings.OPSGENIE_API_KEY = "og-key-1"
    settings.OPSGENIE_API_URL = simulator.url
    settings.ONCALL_TIMEOUT_SECONDS = 2.0
    yield simulator
    simulator.stop()


class Canned:
    """A provider gone wrong: every GET gets the same status and raw body."""

    def __init__(self, status: int, body: bytes) -> None:
        canned = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                canned.hits += 1
                self.send_response(canned.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(canned.body)))
                self.end_headers()
                self.wfile.write(canned.body)

            def log_message(self, *args: Any) -> None:
                pass

        self.status, self.body, self.hits = status, body, 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def canned(settings: Any) -> Iterator[Any]:
    servers: list[Canned] = []

    def make(status: int, body: Any) -> Canned:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        server = Canned(status, raw)
        servers.append(server)
        settings.PAGERDUTY_TOKEN = "pd-token-1"
        settings.PAGERDUTY_API_URL = server.url
        settings.OPSGENIE_API_KEY = "og-key-1"
        settings.OPSGENIE_API_URL = server.url
        settings.ONCALL_TIMEOUT_SECONDS = 2.0
        return server

    yield make
    for server in servers:
        server.stop()


def opsgenie_schedule(sim: OnCallSimulator, *emails: str) -> None:
    sim.set_schedule(
        Schedule(
            provider="opsgenie",
            id=OG_ID,
            name="SRE Primary",
            on_call=[
                OnCallPerson(id=f"u{i}", name=e, email=e, level=1) for i, e in enumerate(emails)
            ],
        )
    )


# --------------------------------------------------------------------------------- Opsgenie


def test_opsgenie_reads_a_schedule_by_id_as_well_as_by_name(sim: OnCallSimulator) -> None:
    opsgenie_schedule(sim, "dave@example.com")
    by_id = OpsgenieSource().on_call(OG_ID, now=NOW)
    by_name = OpsgenieSource().on_call("SRE Primary", now=NOW)
    assert [e.email for e in by_id] == [e.email for e in by_name] == ["dave@example.com"]
    assert by_id[0].detail == {"schedule_id": OG_ID, "user_name": "dave@example.com"}


def test_opsgenie_without_a_key_asks_nobody(sim: OnCallSimulator, settings: Any) -> None:
    settings.OPSGENIE_API_KEY = ""
    with pytest.raises(Unreachable, match="OPSGENIE_API_KEY is not set"):
        OpsgenieSource().on_call("SRE Primary", now=NOW)
    assert sim.requests == []


def test_opsgenie_refusing_the_key_says_so_without_the_key(
    sim: OnCallSimulator, settings: Any
) -> None:
    settings.OPSGENIE_API_KEY = "wrong-key"
    with pytest.raises(Unreachable) as caught:
        OpsgenieSource().on_call("SRE Primary", now=NOW)
    assert str(caught.value) == "Opsgenie refused the API key (HTTP 401)"


def test_an_unknown_opsgenie_schedule_is_named_in_the_reason(sim: OnCallSimulator) -> None:
    with pytest.raises(Unreachable) as caught:
        OpsgenieSource().on_call("Nobody", now=NOW)
    assert str(caught.value) == "HTTP 404: Schedule with identifier [Nobody] doesn't exist"


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (500, b"<html>oops</html>", "HTTP 500"),
        (502, [1, 2], "HTTP 502"),
        (200, b"not json", "the answer is not JSON"),
        (200, [], "the answer is not a JSON object"),
        (200, {"data": ["dave@example.com"]}, "the answer is not what Opsgenie documents"),
    ],
)
def test_opsgenie_answers_that_are_not_documented_are_refused(
    canned: Any, status: int, body: Any, reason: str
) -> None:
    canned(status, body)
    with pytest.raises(Unreachable) as caught:
        OpsgenieSource().on_call("SRE Primary", now=NOW)
    assert str(caught.value) == reason


def test_opsgenie_recipients_that_are_not_addresses_are_skipped(canned: Any) -> None:
    canned(200, {"data": {"onCallRecipients": ["dave@example.com", "ops-team", 7, None]}})
    entries = OpsgenieSource().on_call("SRE Primary", now=NOW)
    assert [e.email for e in entries] == ["dave@example.com"]
    assert entries[0].detail["schedule_id"] == ""


# -------------------------------------------------------------------------------- PagerDuty


def test_pagerduty_without_a_token_asks_nobody(sim: OnCallSimulator, settings: Any) -> None:
    settings.PAGERDUTY_TOKEN = ""
    with pytest.raises(Unreachable, match="PAGERDUTY_TOKEN is not set"):
        PagerDutySource().on_call("P123ABC", now=NOW)
    assert sim.requests == []


def test_pagerduty_reads_every_page(sim: OnCallSimulator) -> None:
    people = [
        OnCallPerson(id=f"PUSER{i:03d}", name=f"Person {i}", email=f"p{i}@example.com", level=1)
        for i in range(230)
    ]
    sim.set_schedule(Schedule(provider="pagerduty", id="P123ABC", name="SRE", on_call=people))
    entries = PagerDutySource().on_call("P123ABC", now=NOW)
    assert [e.email for e in entries] == [p.email for p in people]
    assert len(sim.requests) == 3


def test_pagerduty_refuses_to_guess_past_its_page_limit(
    sim: OnCallSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pagerduty, "MAX_PAGES", 2)
    people = [
        OnCallPerson(id=f"PUSER{i:03d}", name=f"Person {i}", email=f"p{i}@example.com", level=1)
        for i in range(201)
    ]
    sim.set_schedule(Schedule(provider="pagerduty", id="P123ABC", name="SRE", on_call=people))
    with pytest.raises(Unreachable, match="more than 200 on-call entries; refusing to guess"):
        PagerDutySource().on_call("P123ABC", now=NOW)
    assert len(sim.requests) == 2


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (500, b"<html>oops</html>", "HTTP 500"),
        (400, [], "HTTP 400"),
        (400, {"error": {"message": "Invalid Input Provided"}}, "HTTP 400: Invalid Input Provided"),
        (200, [], "the answer is not a JSON object"),
    ],
)
def test_pagerduty_failures_say_what_came_back(
    canned: Any, status: int, body: Any, reason: str
) -> None:
    canned(status, body)
    with pytest.raises(Unreachable) as caught:
        PagerDutySource().on_call("P123ABC", now=NOW)
    assert str(caught.value) == reason


def test_pagerduty_entries_of_other_schedules_or_without_an_address_are_skipped(
    canned: Any,
) -> None:
    good = {
        "schedule": {"id": "P123ABC"},
        "user": {"id": "PU1", "summary": "Dave", "email": "dave@example.com"},
        "escalation_policy": {"id": "PEP1"},
        "escalation_level": 1,
    }
    canned(
        200,
        {
            "oncalls": [
                "not an entry",
                {**good, "schedule": {"id": "POTHER"}},
                {**good, "schedule": None},
                {**good, "user": {"id": "PU2", "email": ""}},
                {**good, "user": "PU3"},
                good,
            ],
            "more": False,
        },
    )
    [entry] = PagerDutySource().on_call("P123ABC", now=NOW)
    assert entry.email == "dave@example.com"
    assert entry.detail["user_name"] == "Dave"
    assert entry.detail["escalation_policy"] == "PEP1"
