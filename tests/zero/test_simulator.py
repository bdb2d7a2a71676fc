"""The Zero simulator's evaluator, controls, faults and lifecycle (over real HTTP where it matters).

Driven with ``requests`` and the simulator's Python API, never the portal's client.
The wire contract itself is tested in test_contract.py.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from devtools.zerosim import ppl as sim_ppl
from devtools.zerosim.probe import ContractProbe
from devtools.zerosim.simulator import ZeroSimulator
from devtools.zerosim.state import SimState

REPO = Path(__file__).resolve().parents[2]
POLICIES = "/organizations/{org}/policies"
T0 = datetime(2026, 9, 1, 9, 0, tzinfo=UTC)  # a Tuesday
ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE4jKNqs3f1XDb9wwLke0cPxBI02SSW4slg3us2uVLpa"


def props(name: str, ppl: object) -> dict[str, Any]:
    return {
        "name": name,
        "description": "",
        "explanation": "",
        "remediation": "",
        "enforced": False,
        "namespaceId": "ns-sim",
        "ppl": ppl,
    }


def allow(*criteria: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"allow": {"and": list(criteria)}}]


@pytest.fixture
def sim() -> Iterator[ZeroSimulator]:
    with ZeroSimulator() as simulator:
        yield simulator


@pytest.fixture
def api(sim: ZeroSimulator) -> Iterator[ContractProbe]:
    probe = ContractProbe(sim.url, sim.api_token, sim.organization_id)
    yield probe
    probe.close()


def put(sim: ZeroSimulator, name: str, ppl: object) -> None:
    """Create (or replace) a policy through the model, as an API write."""
    existing = sim.policy_by_name(name)
    if existing is None:
        sim.state.create_policy(props(name, ppl))
    else:
        sim.state.replace_policy(existing["id"], props(name, ppl))


def decide(ppl: object, **facts: Any) -> bool:
    return sim_ppl.evaluate(ppl, sim_ppl.Request(**{"at": T0, **facts}))


# ----------------------------------------------------------------- evaluator


def test_email_matching_is_exact_and_case_sensitive(sim: ZeroSimulator) -> None:
    put(sim, "jit", allow({"email": {"is": "First.Last@Corp.com"}}))
    assert sim.evaluate("jit", "First.Last@Corp.com")
    assert not sim.evaluate("jit", "first.last@corp.com")
    assert not sim.evaluate("jit", "First.Last@Corp.com ")
    assert not sim.evaluate("jit", "")

    url = f"{sim.root_url}/_sim/evaluate"
    same = requests.get(url, params={"policy": "jit", "email": "First.Last@Corp.com"}, timeout=5)
    lower = requests.get(url, params={"policy": "jit", "email": "first.last@corp.com"}, timeout=5)
    assert (same.json()["allow"], lower.json()["allow"]) == (True, False)


@pytest.mark.parametrize(
    ("matcher", "email", "expected"),
    [
        ("a@x.org", "a@x.org", True),
        ({"in": ["a@x.org", "b@x.org"]}, "b@x.org", True),
        ({"not_in": ["a@x.org"]}, "a@x.org", False),
        ({"not_in": ["a@x.org"]}, "c@x.org", True),
        ({"ends_with": "@x.org"}, "c@X.org", False),
        ({"starts_with": "c@", "ends_with": ".org"}, "c@x.org", True),  # operators AND
        ({"starts_with": "c@", "ends_with": ".com"}, "c@x.org", False),
        ({"contains": "@x."}, "c@x.org", True),
        ({"not": "a@x.org"}, "c@x.org", True),
    ],
)
def test_string_matchers(matcher: object, email: str, expected: bool) -> None:
    assert decide(allow({"email": matcher}), email=email) is expected


def test_deny_wins_and_rules_are_ored() -> None:
    policy = [
        {"allow": {"or": [{"email": "a@x.org"}, {"email": "m@x.org"}]}},
        {"deny": {"and": [{"email": "m@x.org"}]}},
        {"allow": {"and": [{"email": "b@x.org"}]}},
    ]
    assert decide(policy, email="a@x.org")
    assert decide(policy, email="b@x.org")
    assert not decide(policy, email="m@x.org")
    assert not decide(policy, email="z@x.org")


def test_not_is_none_and_nor_is_not_all() -> None:
    criteria = [{"email": "a@x.org"}, {"groups": "admins"}]
    not_rule = [{"allow": {"not": criteria}}]
    nor_rule = [{"allow": {"nor": criteria}}]
    assert decide(not_rule, email="z@x.org")
    assert not decide(not_rule, email="a@x.org")
    assert decide(nor_rule, email="a@x.org")  # only one of the two matches
    assert not decide(nor_rule, email="a@x.org", groups=("admins",))


def test_empty_rules_add_nothing_and_terms_in_one_body_are_ored() -> None:
    for empty in ({}, [], {"allow": {}}, [{"allow": {"and": []}}], [{"deny": {}}]):
        assert not decide(empty, email="a@x.org")
    assert decide([{"allow": {"and": []}}, {"allow": {"or": [{"accept": True}]}}], email="a")
    body = [{"allow": {"and": [{"reject": True}], "or": [{"email": "a@x.org"}]}}]
    assert decide(body, email="a@x.org")
    assert not decide(body, email="b@x.org")


def test_date_after_is_inclusive_before_is_exclusive_and_zone_less_means_utc() -> None:
    window = allow({"date": {"after": "2026-09-01T09:00:00Z", "before": "2026-09-01T17:00:00Z"}})
    end = T0 + timedelta(hours=8)
    assert decide(window, at=T0)
    assert not decide(window, at=T0 - timedelta(microseconds=1))
    assert decide(window, at=end - timedelta(microseconds=1))
    assert not decide(window, at=end)
    offset = allow({"date": {"before": "2026-09-01T11:00:00+02:00"}})  # 09:00Z
    assert not decide(offset, at=T0)
    assert decide(offset, at=T0 - timedelta(seconds=1))
    zone_less = allow({"date": {"after": "2026-09-01T09:00:00"}})
    assert decide(zone_less, at=T0)
    assert not decide(zone_less, at=T0 - timedelta(seconds=1))


def test_day_of_week_lists_ranges_that_wrap_and_names() -> None:
    saturday = datetime(2026, 9, 5, 12, 0, tzinfo=UTC)
    wednesday = datetime(2026, 9, 2, 12, 0, tzinfo=UTC)
    for spec, sat, wed in [
        ("fri-mon", True, False),
        ("mon-fri", False, True),
        ("Saturday,wed", True, True),
        ("sun", False, False),
        ("*", True, True),
        ("thursday-tuesday", True, False),
    ]:
        rule = allow({"day_of_week": spec})
        assert (decide(rule, at=saturday), decide(rule, at=wednesday)) == (sat, wed), spec
    assert sim_ppl.parse_days("fri-mon") == frozenset({4, 5, 6, 0})


def test_time_of_day_follows_the_zone_across_a_dst_change() -> None:
    office = allow(
        {"time_of_day": {"timezone": "Europe/Berlin", "after": "09:00", "before": "5 PM"}}
    )
    # 07:30Z is 08:30 in Berlin before the spring change (CET) and 09:30 after (CEST).
    assert not decide(office, at=datetime(2026, 3, 28, 7, 30, tzinfo=UTC))
    assert decide(office, at=datetime(2026, 3, 30, 7, 30, tzinfo=UTC))
    # 15:30Z is 17:30 CEST before the autumn change and 16:30 CET after it.
    assert not decide(office, at=datetime(2026, 10, 24, 15, 30, tzinfo=UTC))
    assert decide(office, at=datetime(2026, 10, 26, 15, 30, tzinfo=UTC))
    night = allow({"time_of_day": {"timezone": "UTC", "after": "10:00PM", "before": "6:00"}})
    assert decide(night, at=datetime(2026, 9, 1, 23, 0, tzinfo=UTC))
    assert decide(night, at=datetime(2026, 9, 1, 5, 59, tzinfo=UTC))
    assert not decide(night, at=datetime(2026, 9, 1, 12, 0, tzinfo=UTC))


def test_http_method_path_and_source_ip_need_their_fact(sim: ZeroSimulator) -> None:
    put(
        sim,
        "api",
        allow(
            {"http_method": {"in": ["GET", "HEAD"]}},
            {"http_path": {"starts_with": "/api/"}},
            {"source_ip": ["10.0.0.0/8", "2001:db8::/32"]},
        ),
    )
    inside = {"method": "GET", "path": "/api/v1/users", "source_ip": "10.1.2.3"}
    assert sim.evaluate("api", "a@x.org", **inside)
    assert sim.evaluate("api", "a@x.org", **{**inside, "source_ip": "2001:db8::1"})
    assert not sim.evaluate("api", "a@x.org", **{**inside, "method": "get"})
    assert not sim.evaluate("api", "a@x.org", **{**inside, "method": "POST"})
    assert not sim.evaluate("api", "a@x.org", **{**inside, "path": "/admin"})
    assert not sim.evaluate("api", "a@x.org", **{**inside, "source_ip": "192.168.1.1"})
    assert not sim.evaluate("api", "a@x.org", **{**inside, "source_ip": "not-an-ip"})
    for missing in ("method", "path", "source_ip"):
        facts = {k: v for k, v in inside.items() if k != missing}
        assert not sim.evaluate("api", "a@x.org", **facts), missing

    url = f"{sim.root_url}/_sim/evaluate"
    query = {"policy": "api", "email": "a@x.org", **inside}
    assert requests.get(url, params=query, timeout=5).json()["allow"] is True
    query["path"] = "/admin"
    assert requests.get(url, params=query, timeout=5).json()["allow"] is False
    assert decide(allow({"source_ip": "10.1.2.3"}), source_ip="10.1.2.3")


def test_other_criteria_need_their_facts_or_never_match() -> None:
    assert decide(allow({"groups": {"has": "admins"}}), groups=("admins", "ops"))
    assert not decide(allow({"groups": {"is": "admins"}}), groups=("admins", "ops"))
    assert not decide(allow({"groups": {"exclude": "ops"}}), groups=("admins", "ops"))
    assert decide(allow({"claim/department": "sre"}), claims={"department": ["sre", "ops"]})
    assert not decide(allow({"claim/department": "sre"}))
    assert decide(allow({"user": "idp|1"}), user="idp|1")
    assert not decide(allow({"user": "idp|1"}), email="idp|1")
    assert decide(allow({"domain": "corp.com"}), email="a@corp.com")
    assert decide(allow({"authenticated_user": True}), email="a@corp.com")
    for name in ("device", "mcp_tool", "ssh_username"):
        assert not decide(allow({name: {"is": "x"}}), email="a@corp.com"), name
    assert not decide(allow({"client_certificate": {"san_dns": "x"}}), email="a@corp.com")


def test_the_evaluator_enforces_only_the_applied_version(sim: ZeroSimulator) -> None:
    put(sim, "jit", allow({"email": "a@x.org"}))
    sim.configure(auto_apply=False, apply_delay=0)
    put(sim, "jit", allow({"email": "b@x.org"}))
    assert sim.policy_by_name("jit")["ppl"] == allow({"email": "b@x.org"})
    assert sim.evaluate("jit", "a@x.org")
    assert not sim.evaluate("jit", "b@x.org")
    assert sim.history("jit")[-1]["appliedAt"] is None

    pending = sim.pending_changeset()
    assert pending is not None
    sim.state.apply_changeset(pending["id"])
    assert sim.evaluate("jit", "b@x.org")
    assert not sim.evaluate("jit", "a@x.org")
    assert sim.effective_policy("jit")["ppl"] == allow({"email": "b@x.org"})

    sim.state.delete_policy(sim.policy_by_name("jit")["id"])
    assert sim.evaluate("jit", "b@x.org")  # the deletion is still pending
    sim.console_apply(sim.pending_changeset()["id"], by_email="carol@example.com")
    with pytest.raises(KeyError):
        sim.evaluate("jit", "b@x.org")


def test_evaluate_control_validates_its_input(sim: ZeroSimulator) -> None:
    put(sim, "jit", allow({"accept": True}))
    url = f"{sim.root_url}/_sim/evaluate"
    assert requests.get(url, params={"policy": "jit"}, timeout=5).status_code == 400
    naive = {"policy": "jit", "email": "a", "at": "2026-09-01T10:00:00"}
    assert requests.get(url, params=naive, timeout=5).status_code == 400
    unknown = {"policy": "nope", "email": "a"}
    assert requests.get(url, params=unknown, timeout=5).status_code == 404
    at = {"policy": "jit", "email": "a", "at": "2026-09-01T10:00:00+02:00"}
    assert requests.get(url, params=at, timeout=5).json()["allow"] is True


# ------------------------------------------------------- PPL validation (own)


@pytest.mark.parametrize(
    ("ppl", "fragment"),
    [
        ("allow: {}", "is not of type 'object', 'array'"),
        (allow({"date": {"before": "2026-02-29T00:00:00Z"}}), "day is out of range"),
        (allow({"day_of_week": "mon-"}), "'' is not a day of the week"),
        (allow({"day_of_week": "mon,,fri"}), "empty item"),
        (allow({"time_of_day": {"timezone": "Europe/Berlin", "after": "25:00"}}), "hour"),
        (allow({"time_of_day": {"timezone": "Europe/Berlin", "after": "13 PM"}}), "12-hour"),
        (allow({"time_of_day": {"timezone": "Nowhere/City", "after": "9:00"}}), "time zone"),
        (allow({"source_ip": ["10.0.0.1", "10.0.0.0/40"]}), "source_ip"),
        (allow({"groups": {"contains": "x"}}), "unknown groups matcher operator 'contains'"),
        (allow({"source_ip": "10.0.0.0/33"}), "expected IP or CIDR range"),
        (allow({"source_ip": "10.0.0.0/255.0.0.0"}), "expected IP or CIDR range"),
        (allow({"source_ip": "fe80::1%eth0"}), "expected IP or CIDR range"),
        (allow({"source_ip": "010.0.0.1"}), "source_ip"),
        (allow({"ssh_publickey": "ssh-ed25519 AAAA"}), "no SSH public key found"),
        (allow({"ssh_ca": ["ssh-rsa AAAAB3NzaC1yc2E="]}), "no SSH public key found"),
        (allow({"ssh_user_ca": ED25519}), "ssh_user_ca"),
        (allow({"pomerium_routes": True}), "pomerium_routes"),
        (allow({"device": {"kind": "any"}}), "unexpected field in device criterion"),
        (allow({"client_certificate": {"fingerprint": "ab"}}), "fingerprint"),
        (allow({"client_certificate": {"issuer": "x"}}), "unsupported certificate matcher"),
        (allow({"mcp_tool": {"like": "x"}}), "mcp_tool"),
        (allow({"day_of_week": "Mon - Fri"}), "is not a day of the week"),
        (allow({"time_of_day": {"timezone": "UTC", "after": "3pm"}}), "not a time of day"),
        (allow({"time_of_day": {"timezone": "UTC", "after": "9:5"}}), "not a time of day"),
    ],
)
def test_sim_ppl_refuses_what_pomerium_refuses(ppl: object, fragment: str) -> None:
    problems = sim_ppl.validate(ppl)
    assert any(fragment in p for p in problems), problems
    with pytest.raises(ValueError, match=re.escape(problems[0])):
        sim_ppl.evaluate(ppl, sim_ppl.Request())


@pytest.mark.parametrize(
    "ppl",
    [
        {},
        [{"allow": {}}],
        allow({"email": {"not_in": ["a@x.org"]}}),
        allow({"mcp_tool": {"in": ["search"]}}, {"ssh_username_matches_email": True}),
        allow({"ssh_publickey": [f"# laptop\n{ED25519} alice"]}, {"ssh_ca": ED25519}),
        allow({"source_ip": ["10.0.0.1/24", "2001:db8::/32", "192.0.2.7"]}),
        allow({"device": {"type": "any", "approved": True}}),
        allow(
            {"client_certificate": {"spki_hash": "FsDbM0rUYIiL3V339eIKqiz6HPSB+Pz2WeAWhqlqh8U="}}
        ),
        allow({"date": {"after": "2150-01-02T16:20:00"}}),
        allow({"time_of_day": {"timezone": "America/New_York", "before": "3 PM"}}),
        allow({"time_of_day": {"timezone": "UTC", "after": "15:04:05"}}),
        allow({"day_of_week": "Mon-Fri"}),
        allow({"time_of_day": {"timezone": "UTC", "after": "9:05 AM", "before": "17:00:00.5"}}),
    ],
)
def test_sim_ppl_accepts_what_pomerium_accepts(ppl: object) -> None:
    assert sim_ppl.validate(ppl) == []


def test_parse_time_formats() -> None:
    assert [
        sim_ppl.parse_time(t).isoformat() for t in ("15:04", "15:04:05", "3:04PM", "3 PM", "12 AM")
    ] == ["15:04:00", "15:04:05", "15:04:00", "15:00:00", "00:00:00"]


# ---------------------------------------------------------------- the model


def test_hand_edits_are_validated_logged_and_not_counted() -> None:
    state = SimState("org", "cluster", "ns-sim", auto_apply=True)
    state.create_policy(props("jit", allow({"reject": True})))
    edited = state.hand_edit("jit", "allow:\n  and:\n  - accept: true\n", "eve@example.com")
    assert edited["ppl"] == {"allow": {"and": [{"accept": True}]}}  # YAML typed in the console
    with pytest.raises(ValueError, match="email_domain"):
        state.hand_edit("jit", allow({"email_domain": "x"}), "eve@example.com")
    with pytest.raises(KeyError):
        state.hand_edit("nope", {}, "eve@example.com")
    users = [e["user"].get("email") for e in state.activity_logs()]
    assert users == ["eve@example.com", "api@sim"]
    assert state.write_count == 1


def test_routes_show_their_policies(sim: ZeroSimulator, api: ContractProbe) -> None:
    created = api.call("POST", POLICIES, json=props("jit", allow({"reject": True}))).json()
    enforced = api.call("POST", POLICIES, json={**props("base", {}), "enforced": True}).json()
    sim.add_route("wiki", "https://wiki.example.com", [created["id"]])
    (route,) = api.call(
        "GET", "/organizations/{org}/routes", params={"namespaceId": "ns-sim"}
    ).json()
    assert route["from"] == "https://wiki.example.com"
    assert route["policies"] == [
        {"id": created["id"], "name": "jit", "updatedAt": created["updatedAt"]}
    ]
    assert route["enforcedPolicyIds"] == [enforced["id"]]
    policy = api.call("GET", f"{POLICIES}/{created['id']}").json()
    assert [r["name"] for r in policy["routes"]] == ["wiki"]
    assert policy["enforcedRoutes"] == []
    assert [
        r["name"] for r in api.call("GET", f"{POLICIES}/{enforced['id']}").json()["enforcedRoutes"]
    ] == ["wiki"]


# ------------------------------------------------------------------- faults


def _statuses(api: ContractProbe, calls: int) -> list[tuple[int, str | None]]:
    answers = [api.call("GET", "/organizations/{org}/clusters") for _ in range(calls)]
    return [(a.status_code, a.headers.get("Retry-After")) for a in answers]


def test_fault_injection_rate_is_seeded(sim: ZeroSimulator, api: ContractProbe) -> None:
    api.token()
    sim.set_faults(error_rate=0.3, seed=1234)
    first = _statuses(api, 300)
    failures = [status for status, _ in first if status != 200]
    assert 60 < len(failures) < 120
    assert set(failures) <= {429, 500, 502, 503}
    assert len(set(failures)) > 1
    assert sim.fault_count == len(failures)
    assert {after for status, after in first if status == 429} == {"1"}

    sim.set_faults(seed=1234)
    assert _statuses(api, 300) == first  # same seed, same faults


def test_faulted_writes_are_not_applied(sim: ZeroSimulator, api: ContractProbe) -> None:
    api.token()
    sim.error_rate = 1.0
    answer = api.call("POST", POLICIES, json=props("jit", {}))
    assert answer.status_code in {429, 500, 502, 503}
    assert sim.policy_by_name("jit") is None
    assert sim.write_count == 0
    assert sim.state.activity == []


def test_faults_and_settings_can_be_set_over_http(sim: ZeroSimulator) -> None:
    url = f"{sim.root_url}/_sim/faults"
    answer = requests.post(
        url, json={"error_rate": 1.0, "seed": 3, "lost_write_rate": 0.5}, timeout=5
    )
    assert answer.json()["error_rate"] == 1.0
    assert (sim.error_rate, sim.lost_write_rate) == (1.0, 0.5)
    assert requests.post(url, json={"error_rate": 2}, timeout=5).status_code == 400
    assert requests.post(url, json={"bogus": 1}, timeout=5).status_code == 400
    # /token is spared unless faults_on_token is set.
    token_url = f"{sim.url}/token"
    assert (
        requests.post(token_url, json={"refreshToken": sim.api_token}, timeout=5).status_code == 200
    )
    requests.post(url, json={"faults_on_token": True}, timeout=5)
    token = requests.post(token_url, json={"refreshToken": sim.api_token}, timeout=5)
    assert token.status_code in {429, 500, 502, 503}

    settings = requests.post(
        f"{sim.root_url}/_sim/settings",
        json={
            "maxPageSize": 3,
            "applyDelay": 0,
            "applyFailure": {"status": "rejected", "message": "no"},
        },
        timeout=5,
    ).json()
    assert (settings["maxPageSize"], settings["applyDelay"]) == (3, 0.0)
    assert sim.state.apply_failure == ("rejected", "no")
    bad = requests.post(f"{sim.root_url}/_sim/settings", json={"maxPageSize": 0}, timeout=5)
    assert bad.status_code == 400
    bad = requests.post(
        f"{sim.root_url}/_sim/settings", json={"applyFailure": {"status": "ok"}}, timeout=5
    )
    assert bad.status_code == 400


def test_hand_edit_and_console_apply_controls(sim: ZeroSimulator, api: ContractProbe) -> None:
    sim.configure(auto_apply=False, apply_delay=0)
    api.call("POST", POLICIES, json=props("jit", allow({"reject": True})))
    edit = requests.post(
        f"{sim.root_url}/_sim/hand_edit",
        json={"policy": "jit", "ppl": allow({"accept": True}), "byEmail": "carol@example.com"},
        timeout=5,
    )
    assert edit.status_code == 200
    bad = requests.post(
        f"{sim.root_url}/_sim/hand_edit", json={"policy": "jit", "ppl": "x: ["}, timeout=5
    )
    assert bad.status_code == 400
    (pending,) = sim.changesets("pending")
    applied = requests.post(
        f"{sim.root_url}/_sim/changesets/{pending['id']}/apply",
        json={"byEmail": "carol@example.com"},
        timeout=5,
    ).json()
    assert applied["status"] == "applied"
    assert sim.evaluate("jit", "anyone@x.org")
    by = {e["applied"]["by"].get("email") for e in sim.state.activity_logs()}
    assert by == {"carol@example.com"}


# ------------------------------------------------------------ lifecycle


def test_state_dump_and_reset(sim: ZeroSimulator, api: ContractProbe) -> None:
    api.call("POST", POLICIES, json=props("jit", allow({"reject": True})))
    state = requests.get(f"{sim.root_url}/_sim/state", timeout=5).json()
    assert [p["name"] for p in state["policies"]] == ["jit"]
    assert state["policies"][0]["effectivePpl"] == allow({"reject": True})
    assert state["writeCount"] == 1
    assert state["settings"]["maxPageSize"] == 10

    assert requests.post(f"{sim.root_url}/_sim/reset", timeout=5).status_code == 204
    assert sim.policy_by_name("jit") is None
    assert sim.calls == {}
    listed = api.call("GET", POLICIES, params={"namespaceId": "ns-sim"})
    assert listed.json() == []  # the cached ID token still works


def test_python_helpers_are_unpaged_while_http_is_capped(
    sim: ZeroSimulator, api: ContractProbe
) -> None:
    for i in range(12):
        put(sim, f"p{i:02}", {})
    assert len(sim.state.list_policies("ns-sim")) == 12
    assert len(sim.state.activity_logs()) == 12
    assert len(sim.state.list_policies("ns-sim", limit=5)) == 5
    assert len(api.call("GET", POLICIES, params={"namespaceId": "ns-sim"}).json()) == 10


def test_calls_are_counted_by_template(sim: ZeroSimulator, api: ContractProbe) -> None:
    api.call("GET", POLICIES, params={"namespaceId": "ns-sim"})
    api.call("GET", f"{POLICIES}/abc")
    assert sim.calls[("POST", "/token")] == 1
    assert sim.calls[("GET", POLICIES)] == 1
    assert sim.calls[("GET", POLICIES + "/{id}")] == 1


def test_stop_closes_kept_alive_connections(sim: ZeroSimulator, api: ContractProbe) -> None:
    api.call("GET", "/organizations/{org}/clusters")
    sim.stop()
    with pytest.raises(requests.ConnectionError):
        api.call("GET", "/organizations/{org}/clusters")


def test_command_line_prints_its_url() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devtools.zerosim.simulator",
            "--port",
            "0",
            "--org",
            "org-cli",
            "--max-page-size",
            "2",
            "--no-auto-apply",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        url = line.split(" on ", 1)[1].split(" ", 1)[0]
        assert url.startswith("http://127.0.0.1:")
        assert url.endswith("/api/v0")
        assert "auto-apply off" in line
        probe = ContractProbe(url, "sim-api-token", "org-cli")
        for i in range(3):
            probe.call("POST", POLICIES, json=props(f"p{i}", {}))
        page = probe.call("GET", POLICIES, params={"namespaceId": "ns-sim", "limit": 10})
        assert len(page.json()) == 2
        probe.close()
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert process.returncode == 0
