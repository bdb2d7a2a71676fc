"""The Core stand-in (devtools/coresim) over real HTTP: the wire, the auth rule, Core's PPL
compiler, paging, routes and the evaluator, hand edits, faults and the /_sim controls.

Requests are built here by hand from Pomerium's published contract, not with the portal's
client: these tests pin what the stand-in promises the client's tests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
import requests

from apps.pomerium import configservice_contract as contract
from devtools.coresim import CoreSimulator
from devtools.coresim.simulator import DEV_SHARED_SECRET

JIT_PPL = """\
allow:
  and:
    - email:
        is: alice@example.com
    - http_method:
        is: GET
"""


@pytest.fixture
def core() -> Iterator[CoreSimulator]:
    with CoreSimulator() as simulator:
        yield simulator


def headers(core: CoreSimulator, token: str | None = None, **extra: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "Connect-Protocol-Version": "1",
        "Authorization": "Bearer Pomerium-" + (token if token is not None else core.token()),
        **extra,
    }


def rpc(
    core: CoreSimulator,
    method: str,
    body: object,
    *,
    token: str | None = None,
    send: dict[str, str] | None = None,
) -> requests.Response:
    return requests.post(
        core.method_url(method),
        data=json.dumps(body),
        headers=send if send is not None else headers(core, token),
        timeout=5,
    )


def ok(response: requests.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def refused(response: requests.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code
    assert contract.errors("ConnectError", body) == []
    message: str = body["message"]
    return message


def create(core: CoreSimulator, name: str = "jit", source: str = JIT_PPL) -> dict[str, Any]:
    policy: dict[str, Any] = ok(
        rpc(core, "CreatePolicy", {"policy": {"name": name, "sourcePpl": source}})
    )["policy"]
    return policy


# ------------------------------------------------------------------ auth


def test_a_jwt_with_only_exp_signed_with_the_decoded_secret_is_accepted_in_both_headers(
    core: CoreSimulator,
) -> None:
    token = core.token()
    by_jwt = {**headers(core), "jwt": token}
    del by_jwt["Authorization"]
    assert ok(rpc(core, "GetServerInfo", {}, send=by_jwt)) == {
        "serverType": "SERVER_TYPE_CORE",
        "version": "v0.33.1",
    }
    assert ok(rpc(core, "GetServerInfo", {}, token=token))["serverType"] == "SERVER_TYPE_CORE"


def _signed(claims: dict[str, Any], key: bytes, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


@pytest.mark.filterwarnings("ignore:The HMAC key")  # HS512 with the 32-byte secret, on purpose
def test_every_other_token_is_unauthenticated_and_changes_nothing(core: CoreSimulator) -> None:
    key = base64.b64decode(core.shared_secret)
    exp = int((datetime.now(UTC) + timedelta(minutes=1)).timestamp())
    past = int((datetime.now(UTC) - timedelta(seconds=5)).timestamp())
    bad = {
        "another claim": core.token(sub="portal"),
        "no exp": _signed({"iat": exp - 60}, key),
        "no claims": _signed({}, key),
        "expired": _signed({"exp": past}, key),
        # The classic mistake: signing with the base64 TEXT instead of its bytes.
        "secret not decoded": _signed({"exp": exp}, core.shared_secret.encode()),
        "another algorithm": _signed({"exp": exp}, key, "HS512"),
        "garbage": "not.a.jwt",
    }
    body = {"policy": {"name": "jit", "sourcePpl": JIT_PPL}}
    for why, token in bad.items():
        message = refused(rpc(core, "CreatePolicy", body, token=token), 401, "unauthenticated")
        assert message == "invalid JWT", why
    bare = headers(core)
    del bare["Authorization"]
    assert refused(rpc(core, "CreatePolicy", body, send=bare), 401, "unauthenticated") == (
        "unauthenticated"
    )
    assert core.policies() == []


def test_expiry_follows_the_stand_ins_clock(core: CoreSimulator) -> None:
    token = core.token(ttl=30)
    core.set_clock(datetime.now(UTC) + timedelta(minutes=5))
    refused(rpc(core, "GetServerInfo", {}, token=token), 401, "unauthenticated")
    assert ok(rpc(core, "GetServerInfo", {}))  # a token minted on the moved clock


# ------------------------------------------------------------------ wire


def test_the_connect_protocol_is_enforced(core: CoreSimulator) -> None:
    no_version = headers(core)
    del no_version["Connect-Protocol-Version"]
    message = refused(rpc(core, "GetServerInfo", {}, send=no_version), 400, "invalid_argument")
    assert "Connect-Protocol-Version" in message
    wrong = rpc(core, "GetServerInfo", {}, send=headers(core, **{"Content-Type": "text/plain"}))
    assert wrong.status_code == 415
    charset = headers(core, **{"Content-Type": "application/json; charset=utf-8"})
    assert ok(rpc(core, "GetServerInfo", {}, send=charset))
    get = requests.get(core.method_url("GetServerInfo"), headers=headers(core), timeout=5)
    assert get.status_code == 405
    assert get.headers["Allow"] == "POST"
    assert rpc(core, "NoSuchMethod", {}).status_code == 404
    refused(rpc(core, "CreateRoute", {}), 501, "unimplemented")
    empty = requests.post(core.method_url("GetServerInfo"), headers=headers(core), timeout=5)
    assert "zero-length" in refused(empty, 400, "invalid_argument")
    broken = requests.post(
        core.method_url("GetPolicy"), data=b"{", headers=headers(core), timeout=5
    )
    refused(broken, 400, "invalid_argument")


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("GetServerInfo", {"verbose": True}),
        ("GetPolicy", {"id": "p", "name": "x"}),
        ("CreatePolicy", {"policy": {"name": "x", "source_ppl": JIT_PPL}}),
        ("CreatePolicy", {"policy": {"name": "x", "ppl": {"allow": {}}}}),
        ("CreatePolicy", {"policy": {"name": "x", "sourcePpl": {"allow": {}}}}),
        ("ListPolicies", {"pageSize": 10}),
        ("ListPolicies", {"limit": -1}),
        ("UpdateRoute", {"route": {"id": "wiki", "policy_ids": []}}),
    ],
)
def test_requests_are_closed_messages(core: CoreSimulator, method: str, body: object) -> None:
    message = refused(rpc(core, method, body), 400, "invalid_argument")
    assert message.startswith(f"unmarshal into *config.{method}Request")
    assert core.policies() == []


def test_answers_are_proto_json(core: CoreSimulator) -> None:
    assert ok(rpc(core, "ListPolicies", {})) == {}  # empty: no list, no totalCount
    created = create(core)
    assert contract.errors("Policy", created) == []
    assert created["createdAt"] == created["modifiedAt"]
    assert created["createdAt"].endswith("Z")
    listed = ok(rpc(core, "ListPolicies", {"limit": "5", "offset": "0"}))
    assert listed["totalCount"] == "1"  # a 64-bit integer, as a string
    assert listed["policies"] == [created]


# ------------------------------------------------------------------ policies


def test_create_get_update_delete(core: CoreSimulator) -> None:
    created = create(core)
    assert created["id"]  # assigned by the server
    fetched = ok(rpc(core, "GetPolicy", {"id": created["id"]}))["policy"]
    assert fetched == created
    taken = rpc(core, "CreatePolicy", {"policy": {"id": created["id"], "name": "again"}})
    assert "already exists" in refused(taken, 409, "already_exists")
    chosen = ok(rpc(core, "CreatePolicy", {"policy": {"id": "my-id", "name": "mine"}}))
    assert chosen["policy"]["id"] == "my-id"
    refused(rpc(core, "GetPolicy", {"id": "nope"}), 404, "not_found")
    refused(rpc(core, "GetPolicy", {}), 400, "invalid_argument")
    missing = {"policy": {"id": "nope", "name": "x"}}
    refused(rpc(core, "UpdatePolicy", missing), 404, "not_found")

    # Without a mask the body replaces the record: fields left out are cleared.
    replaced = ok(rpc(core, "UpdatePolicy", {"policy": {"id": created["id"], "name": "jit-2"}}))
    assert replaced["policy"]["name"] == "jit-2"
    assert "sourcePpl" not in replaced["policy"]
    assert replaced["policy"]["createdAt"] == created["createdAt"]
    assert replaced["policy"]["modifiedAt"] > created["modifiedAt"]

    # With a mask only the named fields change.
    masked = ok(
        rpc(
            core,
            "UpdatePolicy",
            {
                "policy": {"id": created["id"], "name": "ignored", "sourcePpl": JIT_PPL},
                "updateMask": "sourcePpl",
            },
        )
    )["policy"]
    assert (masked["name"], masked["sourcePpl"]) == ("jit-2", JIT_PPL)
    for read_only in ("createdAt", "id"):
        body = {"policy": {"id": created["id"]}, "updateMask": read_only}
        assert "read-only" in refused(rpc(core, "UpdatePolicy", body), 400, "invalid_argument")
    body = {"policy": {"id": created["id"]}, "updateMask": "nosuchfield"}
    refused(rpc(core, "UpdatePolicy", body), 400, "invalid_argument")

    assert ok(rpc(core, "DeletePolicy", {"id": created["id"]})) == {}
    refused(rpc(core, "GetPolicy", {"id": created["id"]}), 404, "not_found")
    assert ok(rpc(core, "DeletePolicy", {"id": created["id"]})) == {}  # Core: no error


@pytest.mark.parametrize(
    ("criterion", "source"),
    [
        ("date", '{"allow":{"and":[{"date":{"after":"2026-09-01T09:00:00Z"}}]}}'),
        ("day_of_week", "allow:\n  and:\n    - day_of_week: mon-fri\n"),
        ("time_of_day", "allow:\n  or:\n    - time_of_day:\n        timezone: UTC\n"),
        ("no_such", "- deny:\n    or:\n      - no_such: true\n"),
    ],
)
def test_a_criterion_core_does_not_know_is_refused_as_core_words_it(
    core: CoreSimulator, criterion: str, source: str
) -> None:
    response = rpc(core, "CreatePolicy", {"policy": {"name": "jit", "sourcePpl": source}})
    message = refused(response, 400, "invalid_argument")
    assert message == f"invalid policy: unknown policy criterion: {criterion}"
    assert core.policies() == []
    policy = create(core)
    update = {"policy": {"id": policy["id"], "sourcePpl": source}, "updateMask": "sourcePpl"}
    refused(rpc(core, "UpdatePolicy", update), 400, "invalid_argument")
    assert core.policy(policy["id"])["sourcePpl"] == JIT_PPL


@pytest.mark.parametrize(
    "source",
    [
        JIT_PPL,
        json.dumps([{"allow": {"or": [{"claim/groups": "admins"}, {"domain": {"is": "x.com"}}]}}]),
        "allow:\n  and:\n    - accept: true\ndeny:\n  or:\n    - source_ip: 10.0.0.0/8\n",
        "allow:\n  or:\n    - http_path:\n        starts_with: /api\n    - mcp_tool: read\n",
    ],
)
def test_core_criteria_in_yaml_or_json_compile(core: CoreSimulator, source: str) -> None:
    assert create(core, source=source)["sourcePpl"] == source


@pytest.mark.parametrize(
    "source",
    [
        "allow: [",  # not YAML
        "42",
        "allow:\n  and:\n    - email: a@x.com\n      user: u\n",  # two keys in one criterion
        "allow:\n  xor:\n    - accept: true\n",
        "permit:\n  or:\n    - accept: true\n",
        "allow:\n  or:\n    - email:\n        matches: a.*\n",
        "allow:\n  or:\n    - source_ip: not-an-ip\n",
        "allow:\n  or:\n    - email:\n        in: a@x.com\n",  # in wants a list
        "allow:\n  or:\n    - http_path:\n        starts_with: [1]\n",
    ],
)
def test_ppl_core_cannot_compile_is_invalid_argument(core: CoreSimulator, source: str) -> None:
    response = rpc(core, "CreatePolicy", {"policy": {"name": "jit", "sourcePpl": source}})
    assert refused(response, 400, "invalid_argument").startswith("invalid policy: ")


# ------------------------------------------------------------------ paging


def test_the_page_cap_applies_whatever_limit_says(core: CoreSimulator) -> None:
    core.seed_foreign_policies(25)
    first = ok(rpc(core, "ListPolicies", {"limit": 100}))
    assert (len(first["policies"]), first["totalCount"]) == (10, "25")
    last = ok(rpc(core, "ListPolicies", {"offset": "20", "limit": "100"}))
    assert [p["name"] for p in last["policies"]] == [f"foreign-{n:03d}" for n in range(21, 26)]
    assert ok(rpc(core, "ListPolicies", {"offset": 30}))["totalCount"] == "25"
    core.configure(page_cap=3)
    assert len(ok(rpc(core, "ListPolicies", {}))["policies"]) == 3
    assert len(ok(rpc(core, "ListPolicies", {"limit": 2}))["policies"]) == 2
    ordered = ok(rpc(core, "ListPolicies", {"orderBy": "name desc"}))["policies"]
    assert ordered[0]["name"] == "foreign-025"
    refused(rpc(core, "ListPolicies", {"orderBy": "colour"}), 400, "invalid_argument")
    named = ok(rpc(core, "ListPolicies", {"filter": {"name": "foreign-007"}}))
    assert named["totalCount"] == "1"


# ------------------------------------------------------------------ routes and the evaluator


def test_a_policy_protects_nothing_until_a_route_lists_it(core: CoreSimulator) -> None:
    core.add_route("grafana", "https://grafana.example.com", show_error_details=True)
    policy = create(core)
    assert not core.evaluate(policy["id"], "alice@example.com")
    assert not core.evaluate("grafana", "alice@example.com")

    route = ok(rpc(core, "GetRoute", {"id": "grafana"}))["route"]
    assert route["showErrorDetails"] is True
    update = {"route": {"id": "grafana", "policyIds": [policy["id"]]}, "updateMask": "policyIds"}
    updated = ok(rpc(core, "UpdateRoute", update))["route"]
    assert updated["policyIds"] == [policy["id"]]
    assert updated["from"] == "https://grafana.example.com"  # kept: not in the mask
    assert updated["modifiedAt"] > route["modifiedAt"]

    assert core.evaluate("grafana", "alice@example.com", method="GET")
    assert not core.evaluate("grafana", "alice@example.com", method="POST")
    assert not core.evaluate("grafana", "bob@example.com")
    assert not core.evaluate("grafana", "Alice@example.com")  # exact, as the proxy
    assert core.evaluate(policy["id"], "alice@example.com")
    assert core.evaluate("jit", "alice@example.com")  # by name
    listed = ok(rpc(core, "ListRoutes", {}))
    assert (listed["totalCount"], listed["routes"][0]["id"]) == ("1", "grafana")
    refused(rpc(core, "GetRoute", {"id": "nope"}), 404, "not_found")
    refused(rpc(core, "UpdateRoute", {"route": {"id": "nope"}}), 404, "not_found")

    # Deleting the policy ends access; Core leaves the id on the route.
    ok(rpc(core, "DeletePolicy", {"id": policy["id"], "removeFromAnyAssignedRoutes": True}))
    assert not core.evaluate("grafana", "alice@example.com")
    assert core.route("grafana")["policyIds"] == [policy["id"]]


def test_some_policy_allows_and_none_denies(core: CoreSimulator) -> None:
    allow = create(core, "allow-alice")
    other = create(core, "allow-bob", "allow:\n  or:\n    - email:\n        is: bob@example.com\n")
    deny = create(core, "deny-post", "deny:\n  or:\n    - http_method:\n        is: POST\n")
    core.add_route("wiki", "https://wiki.example.com", [allow["id"], other["id"], deny["id"]])
    assert core.evaluate("wiki", "alice@example.com")
    assert not core.evaluate("wiki", "bob@example.com", method="POST")
    assert not core.evaluate("wiki", "carol@example.com")
    shortcut = ok(
        rpc(core, "CreatePolicy", {"policy": {"name": "dom", "allowedDomains": ["corp.com"]}})
    )["policy"]
    core.attach("wiki", shortcut["id"])
    assert core.evaluate("wiki", "carol@corp.com")
    answer = requests.post(
        core.url + "/_sim/evaluate",
        json={"target": "wiki", "email": "alice@example.com", "method": "DELETE"},
        timeout=5,
    )
    assert answer.json() == {"allow": False}
    with pytest.raises(KeyError):
        core.evaluate("nothing-by-that-name", "alice@example.com")


# ------------------------------------------------------------------ hand edits


def test_a_hand_edit_moves_modified_at_and_the_last_write_wins(core: CoreSimulator) -> None:
    policy = create(core)
    core.add_route("grafana", "https://grafana.example.com", [policy["id"]])
    edited_ppl = "allow:\n  or:\n    - email:\n        is: mallory@example.com\n"
    edited = core.hand_edit(policy["id"], source_ppl=edited_ppl, description="by hand")
    assert edited["modifiedAt"] > policy["modifiedAt"]
    read = ok(rpc(core, "GetPolicy", {"id": policy["id"]}))["policy"]
    assert (read["sourcePpl"], read["description"]) == (edited_ppl, "by hand")
    assert core.evaluate("grafana", "mallory@example.com")
    with pytest.raises(ValueError, match="unknown policy criterion: date"):
        core.hand_edit(policy["id"], source_ppl="allow:\n  or:\n    - date: {}\n")
    # The portal writes without a precondition: the hand edit is lost.
    ok(rpc(core, "UpdatePolicy", {"policy": {**policy, "sourcePpl": JIT_PPL}}))
    assert not core.evaluate("grafana", "mallory@example.com")


# ------------------------------------------------------------------ faults and counters


def test_faults_answer_5xx_unprocessed_and_lost_writes_are_committed(core: CoreSimulator) -> None:
    core.set_faults(error_rate=1.0)
    for _ in range(5):
        response = rpc(core, "CreatePolicy", {"policy": {"name": "x"}})
        assert response.status_code in (500, 503)
        assert response.json()["code"] in ("internal", "unavailable")
    assert core.policies() == []
    core.set_faults(error_rate=0.0, outage=True)
    refused(rpc(core, "GetServerInfo", {}), 503, "unavailable")
    core.set_faults(outage=False, lost_write_rate=1.0)
    refused(rpc(core, "CreatePolicy", {"policy": {"name": "lost"}}), 503, "unavailable")
    assert [p["name"] for p in core.policies()] == ["lost"]  # committed all the same
    assert ok(rpc(core, "ListPolicies", {}))["totalCount"] == "1"  # reads are not writes
    assert core.faults()["lost_answer_count"] == 1
    assert core.calls["CreatePolicy"] == 6
    assert core.calls["GetServerInfo"] == 1
    with pytest.raises(ValueError, match="error_rate"):
        core.set_faults(error_rate=2)


def test_the_sim_controls_over_http(core: CoreSimulator) -> None:
    def post(name: str, body: object) -> requests.Response:
        return requests.post(f"{core.url}/_sim/{name}", json=body, timeout=5)

    assert post("routes", {"id": "wiki", "from": "https://wiki.example.com"}).status_code == 201
    assert post("foreign-policies", {"count": 3}).status_code == 201
    policy_id = core.policies()[0]["id"]
    assert post("attach", {"route": "wiki", "policy": policy_id}).status_code == 200
    edited = post("hand-edit", {"id": policy_id, "description": "by hand"}).json()
    assert edited["description"] == "by hand"
    assert post("settings", {"page_cap": 2}).json()["page_cap"] == 2
    assert post("settings", {"page_cap": 0}).status_code == 400
    assert post("faults", {"latency": [0, 0.01]}).status_code == 200
    assert post("faults", {"error_rate": "lots"}).status_code == 400
    assert post("hand-edit", {"id": "nope", "description": "x"}).status_code == 404
    assert post("nothing", {}).status_code == 404
    assert post("clock", {"now": "2026-09-01T09:00:00+00:00"}).status_code == 200
    assert create(core)["createdAt"] == "2026-09-01T09:00:00Z"
    state = requests.get(f"{core.url}/_sim/state", timeout=5).json()
    assert (len(state["policies"]), len(state["routes"])) == (4, 1)
    assert state["calls"] == {"CreatePolicy": 1}
    assert post("reset", {}).status_code == 200
    assert (core.policies(), core.routes(), dict(core.calls)) == ([], [], {})
    assert core.page_cap == 2  # settings stay


def test_python_m_prints_one_line_without_the_secret() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "devtools.coresim", "--port", "0", "--route", "wiki=https://w"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert line.startswith("Core stand-in on http://127.0.0.1:")
    assert "shared secret the default test value" in line
    assert DEV_SHARED_SECRET not in line


ODD_BODIES: list[object] = [
    None,
    [],
    "text",
    17,
    {"id": None},
    {"id": 5},
    {"policy": None},
    {"policy": {"id": None, "sourcePpl": "allow:\n  or:\n    - email:\n        in: a@x.com\n"}},
    {"policy": {"sourcePpl": "allow:\n  or:\n    - email:\n        starts_with: [1]\n"}},
    {"policy": {"sourcePpl": "&a [*a, *a]"}},
    {"policy": {"sourcePpl": "allow:\n  or:\n    - http_method: {is: 5}\n"}},
    {"policy": {"allowedIdpClaims": {"groups": [{"x": 1}]}}},
    {"route": {"id": "wiki", "policyIds": "p"}},
    {"route": {"id": "wiki", "from": ""}},
    {"offset": "1e3"},
    {"limit": 2**70},
    {"orderBy": ","},
    {"filter": {"$and": []}},
    {"updateMask": "a.b", "policy": {"id": "x"}},
]


@pytest.mark.parametrize("method", contract.METHODS)
def test_no_input_makes_a_5xx(core: CoreSimulator, method: str) -> None:
    core.add_route("wiki", "https://wiki.example.com")
    for body in ODD_BODIES:
        response = rpc(core, method, body)
        assert response.status_code < 500, (body, response.text)
        if response.status_code != 200:
            assert contract.errors("ConnectError", response.json()) == []
    assert core.faults()["fault_count"] == 0


def test_an_exp_that_is_not_a_finite_number_is_refused(core: CoreSimulator) -> None:
    key = base64.b64decode(core.shared_secret)
    header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=")
    payload = base64.urlsafe_b64encode(b'{"exp":NaN}').rstrip(b"=")
    signing_input = header + b"." + payload
    signature = base64.urlsafe_b64encode(
        hmac.new(key, signing_input, hashlib.sha256).digest()
    ).rstrip(b"=")
    token = (signing_input + b"." + signature).decode()
    refused(rpc(core, "GetServerInfo", {}, token=token), 401, "unauthenticated")
