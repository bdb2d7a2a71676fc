"""The Zero simulator over real HTTP, driven through the real ZeroClient."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from apps.zero import ppl
from apps.zero.client import ZeroClient, ZeroPermanentError, ZeroTransientError
from apps.zero.simulator import ZeroSimulator

REPO = Path(__file__).resolve().parents[2]
POLICIES = "/organizations/{org}/policies"


def now() -> datetime:
    return datetime.now(UTC)


def grant_policy(email: str, start: datetime, end: datetime) -> list[dict]:
    return ppl.render_policy([], [ppl.GrantRule(email, start, end)])


def props(name: str, rules: object) -> dict:
    return {"name": name, "description": "test", "ppl": rules}


def raw(sim: ZeroSimulator, method: str, path: str, **kwargs: object) -> requests.Response:
    """An authenticated request that bypasses the client (to send what it never would)."""
    token = requests.post(f"{sim.url}/token", json={"refreshToken": sim.api_token}, timeout=5)
    headers = {"Authorization": f"Bearer {token.json()['idToken']}"}
    return requests.request(method, sim.url + path, headers=headers, timeout=5, **kwargs)


# ------------------------------------------------------------------ policies


def test_create_get_replace_list_round_trip(sim: ZeroSimulator, zero: ZeroClient) -> None:
    rules = grant_policy("alice@example.com", now(), now() + timedelta(hours=1))
    created = zero.create_policy(props("jit", rules))

    assert created["ppl"] == rules
    assert created["namespaceId"] == "ns-sim"
    assert created["createdAt"].endswith("Z")
    assert zero.get_policy(created["id"])["ppl"] == rules
    assert sim.policy_by_name("jit")["ppl"] == ppl.dumps(rules)  # stored as the text sent

    replaced = zero.replace_policy(created["id"], {**created, "ppl": [ppl.DENY_ALL_RULE]})
    assert replaced["ppl"] == [ppl.DENY_ALL_RULE]
    assert replaced["description"] == "test"
    assert zero.get_policy(created["id"])["ppl"] == [ppl.DENY_ALL_RULE]
    assert [p["name"] for p in zero.list_policies()] == ["jit"]
    assert zero.find_policy_by_name("jit")["id"] == created["id"]
    assert sim.write_count == 2


def test_duplicate_name_is_409(sim: ZeroSimulator, zero: ZeroClient) -> None:
    zero.create_policy(props("jit", [ppl.DENY_ALL_RULE]))
    with pytest.raises(ZeroPermanentError) as info:
        zero.create_policy(props("jit", [ppl.DENY_ALL_RULE]))
    assert info.value.status == 409
    assert len(zero.list_policies()) == 1
    assert sim.write_count == 1


@pytest.mark.parametrize(
    ("rules", "fragment"),
    [
        ([{"allow": {"and": [{"email_domain": "example.com"}]}}], "unknown criterion"),
        ([{"allow": {"and": [{"date": {"before": "2026-09-01T17:00:00"}}]}}], "RFC 3339"),
        ("this is: [not ppl", "neither JSON nor YAML"),
    ],
)
def test_strict_ppl_validation(
    sim: ZeroSimulator, zero: ZeroClient, rules: object, fragment: str
) -> None:
    with pytest.raises(ZeroPermanentError) as info:
        zero.create_policy(props("bad", rules))
    assert info.value.status == 400
    assert fragment in str(info.value)
    assert sim.policy_by_name("bad") is None
    assert sim.write_count == 0


def test_yaml_ppl_is_accepted(sim: ZeroSimulator, zero: ZeroClient) -> None:
    created = zero.create_policy(props("yaml", "allow:\n  and:\n  - email:\n      is: a@x.org\n"))
    assert sim.evaluate("yaml", "a@x.org")
    assert not sim.evaluate("yaml", "b@x.org")
    assert created["ppl"] == "allow:\n  and:\n  - email:\n      is: a@x.org\n"  # kept verbatim


def test_put_requires_every_property_and_patch_edits(sim: ZeroSimulator, zero: ZeroClient) -> None:
    created = zero.create_policy(props("jit", [ppl.DENY_ALL_RULE]))
    path = POLICIES.replace("{org}", sim.organization_id) + "/" + created["id"]

    partial = raw(sim, "PUT", path, json={"name": "jit", "ppl": "[]"})
    assert partial.status_code == 400
    assert "description" in partial.json()["error"]

    accept_all = ppl.dumps([{"allow": {"and": [{"accept": True}]}}])
    patched = raw(sim, "PATCH", path, json=[{"op": "replace", "path": "/ppl", "value": accept_all}])
    assert patched.status_code == 200
    assert sim.evaluate("jit", "anyone@x.org")

    bad_op = raw(sim, "PATCH", path, json=[{"op": "move", "from": "/a", "path": "/b"}])
    assert bad_op.status_code == 400
    bad_ppl = raw(sim, "PATCH", path, json=[{"op": "replace", "path": "/ppl", "value": "[1]"}])
    assert bad_ppl.status_code == 400
    assert sim.evaluate("jit", "anyone@x.org")  # rejected patches change nothing

    zero.delete_policy(created["id"])
    with pytest.raises(ZeroPermanentError) as info:
        zero.get_policy(created["id"])
    assert info.value.status == 404
    assert sim.write_count == 3  # create, patch, delete


def test_list_policies_requires_namespace_and_paginates(
    sim: ZeroSimulator, zero: ZeroClient
) -> None:
    path = POLICIES.replace("{org}", sim.organization_id)
    missing = raw(sim, "GET", path)
    assert missing.status_code == 400
    assert missing.json() == {"error": "namespaceId is required"}

    for i in range(105):
        zero.create_policy(props(f"p{i:03}", [ppl.DENY_ALL_RULE]))
    before = sim.calls[("GET", POLICIES)]
    names = [p["name"] for p in zero.list_policies()]
    assert names == [f"p{i:03}" for i in range(105)]
    assert sim.calls[("GET", POLICIES)] - before == 2


# ---------------------------------------------------------------------- auth


def test_wrong_api_token_is_permanent(sim: ZeroSimulator) -> None:
    client = ZeroClient(sim.url, "not-the-token", sim.organization_id, sim.cluster_id)
    with pytest.raises(ZeroPermanentError) as info:
        client.list_policies()
    assert info.value.status == 401
    assert "not-the-token" not in str(info.value)


def test_bearer_is_checked(sim: ZeroSimulator) -> None:
    url = f"{sim.url}/organizations/{sim.organization_id}/clusters"
    assert requests.get(url, timeout=5).status_code == 401
    bogus = requests.get(url, headers={"Authorization": "Bearer forged"}, timeout=5)
    assert bogus.status_code == 401
    assert bogus.json() == {"error": "missing, invalid or expired ID token"}
    ok = raw(sim, "GET", f"/organizations/{sim.organization_id}/clusters")
    assert ok.status_code == 200
    assert ok.json()[0]["namespaceId"] == "ns-sim"
    wrong_org = raw(sim, "GET", "/organizations/someone-else/clusters")
    assert wrong_org.status_code == 404


def test_pomerium_scheme_and_token_renewal_after_401(sim: ZeroSimulator) -> None:
    client = ZeroClient(
        sim.url, sim.api_token, sim.organization_id, sim.cluster_id, auth_scheme="Pomerium"
    )
    assert client.namespace_id() == "ns-sim"
    sim.expire_tokens()
    assert client.cluster_settings()["autoApplyChangesets"] is True
    assert client.calls[("POST", "/token")] == 2


def test_unknown_paths_are_json_404(sim: ZeroSimulator) -> None:
    response = requests.get(f"{sim.url}/nothing/here", timeout=5)
    assert response.status_code == 404
    assert "error" in response.json()


# ---------------------------------------------------------------- changesets


def test_changes_wait_for_apply_when_auto_apply_is_off(
    sim: ZeroSimulator, zero: ZeroClient
) -> None:
    start = now() - timedelta(minutes=5)
    created = zero.create_policy(
        props("jit", grant_policy("a@x.org", start, now() + timedelta(hours=1)))
    )
    assert sim.evaluate("jit", "a@x.org")

    sim.auto_apply = False
    assert zero.cluster_settings()["autoApplyChangesets"] is False
    zero.replace_policy(created["id"], {**created, "ppl": [ppl.DENY_ALL_RULE]})

    # The API shows the edit; the proxy still enforces the applied version.
    assert zero.get_policy(created["id"])["ppl"] == [ppl.DENY_ALL_RULE]
    assert sim.evaluate("jit", "a@x.org")
    pending = zero.pending_changesets()
    assert len(pending) == 1
    assert pending[0]["status"] == "pending"
    assert sim.history("jit")[-1]["appliedAt"] is None

    applied = zero.apply_changeset(pending[0]["id"])
    assert applied is not None
    assert applied["status"] == "applied"
    assert not sim.evaluate("jit", "a@x.org")
    assert zero.pending_changesets() == []
    assert sim.history("jit")[-1]["appliedAt"] is not None
    assert sim.effective_policy("jit")["ppl"] == ppl.dumps([ppl.DENY_ALL_RULE])


def test_pending_create_is_not_enforced(sim: ZeroSimulator, zero: ZeroClient) -> None:
    sim.auto_apply = False
    zero.create_policy(props("jit", [{"allow": {"and": [{"accept": True}]}}]))
    with pytest.raises(KeyError):
        sim.evaluate("jit", "a@x.org")
    (changeset,) = zero.pending_changesets()
    zero.apply_changeset(changeset["id"])
    assert sim.evaluate("jit", "a@x.org")


# ----------------------------------------------------------------- evaluator


def test_evaluator_honours_the_grant_window(sim: ZeroSimulator, zero: ZeroClient) -> None:
    start = datetime(2026, 9, 1, 9, 0, tzinfo=UTC)
    end = start + timedelta(hours=8)
    zero.create_policy(props("jit", grant_policy("Alice@Example.com", start, end)))

    assert sim.evaluate("jit", "alice@example.com", at=start + timedelta(hours=1))
    assert not sim.evaluate("jit", "alice@example.com", at=end + timedelta(seconds=1))
    assert not sim.evaluate("jit", "alice@example.com", at=start - timedelta(seconds=1))
    assert not sim.evaluate("jit", "bob@example.com", at=start + timedelta(hours=1))

    url = f"{sim.root_url}/_sim/evaluate"
    inside = {"policy": "jit", "email": "alice@example.com", "at": "2026-09-01T10:00:00Z"}
    assert requests.get(url, params=inside, timeout=5).json()["allow"] is True
    after = {**inside, "at": "2026-09-01T17:00:01Z"}
    assert requests.get(url, params=after, timeout=5).json()["allow"] is False
    naive = {**inside, "at": "2026-09-01T10:00:00"}
    assert requests.get(url, params=naive, timeout=5).status_code == 400
    unknown = {**inside, "policy": "nope"}
    assert requests.get(url, params=unknown, timeout=5).status_code == 404


# ----------------------------------------------------------- fault injection


def _outcomes(sim: ZeroSimulator, calls: int) -> list[tuple[int | None, float | None]]:
    """(status, retry_after) per call; (None, None) for a success."""
    client = ZeroClient(sim.url, sim.api_token, sim.organization_id, sim.cluster_id)
    outcomes: list[tuple[int | None, float | None]] = []
    for _ in range(calls):
        try:
            client.cluster_settings()
            outcomes.append((None, None))
        except ZeroTransientError as exc:
            outcomes.append((exc.status, exc.retry_after))
    return outcomes


def test_fault_injection_rate_is_seeded(sim: ZeroSimulator) -> None:
    sim.set_faults(error_rate=0.3, seed=1234)
    first = _outcomes(sim, 300)
    failures = [status for status, _ in first if status is not None]
    assert 0.2 < len(failures) / len(first) < 0.4
    assert set(failures) <= {429, 500, 502, 503}
    assert len(set(failures)) > 1
    assert sim.fault_count == len(failures)
    assert {after for status, after in first if status == 429} == {1.0}

    sim.set_faults(seed=1234)
    assert _outcomes(sim, 300) == first  # same seed, same faults


def test_faulted_writes_are_not_applied(sim: ZeroSimulator, zero: ZeroClient) -> None:
    zero.namespace_id()
    sim.error_rate = 1.0
    with pytest.raises(ZeroTransientError):
        zero.create_policy(props("jit", [ppl.DENY_ALL_RULE]))
    assert sim.policy_by_name("jit") is None
    assert sim.write_count == 0

    sim.set_faults(error_rate=0.5, seed=7)
    succeeded = 0
    for i in range(40):
        try:
            zero.create_policy(props(f"p{i}", [ppl.DENY_ALL_RULE]))
            succeeded += 1
        except ZeroTransientError:
            pass
    assert 0 < succeeded < 40
    assert sim.write_count == succeeded
    sim.error_rate = 0.0
    assert len(zero.list_policies()) == succeeded


def test_faults_can_be_set_over_http(sim: ZeroSimulator) -> None:
    url = f"{sim.root_url}/_sim/faults"
    answer = requests.post(url, json={"error_rate": 1.0, "seed": 3}, timeout=5)
    assert answer.json()["error_rate"] == 1.0
    assert sim.error_rate == 1.0
    assert requests.post(url, json={"error_rate": 2}, timeout=5).status_code == 400
    # /token is spared unless faults_on_token is set.
    token = requests.post(f"{sim.url}/token", json={"refreshToken": sim.api_token}, timeout=5)
    assert token.status_code == 200
    requests.post(url, json={"faults_on_token": True}, timeout=5)
    token = requests.post(f"{sim.url}/token", json={"refreshToken": sim.api_token}, timeout=5)
    assert token.status_code in {429, 500, 502, 503}


# ------------------------------------------------------------- logs, routes


def test_hand_edit_shows_in_activity_logs(sim: ZeroSimulator, zero: ZeroClient) -> None:
    created = zero.create_policy(props("jit", [ppl.DENY_ALL_RULE]))
    sim.hand_edit("jit", [{"allow": {"and": [{"accept": True}]}}])

    logs = zero.activity_logs(created["id"])
    assert [(e["activityType"], e["user"]["email"]) for e in logs] == [
        ("update", "mallory@example.com"),
        ("create", "api@sim"),
    ]
    assert ppl.normalize(zero.get_policy(created["id"])["ppl"]) != [ppl.DENY_ALL_RULE]
    assert sim.evaluate("jit", "anyone@x.org")
    assert sim.write_count == 1  # hand edits are not API writes


def test_routes_show_their_policies(sim: ZeroSimulator, zero: ZeroClient) -> None:
    created = zero.create_policy(props("jit", [ppl.DENY_ALL_RULE]))
    sim.add_route("wiki", "https://wiki.example.com", [created["id"]])
    (route,) = zero.list_routes()
    assert route["from"] == "https://wiki.example.com"
    assert route["policies"] == [
        {"id": created["id"], "name": "jit", "updatedAt": created["updatedAt"]}
    ]
    assert [r["name"] for r in zero.get_policy(created["id"])["routes"]] == ["wiki"]


def test_state_dump_and_reset(sim: ZeroSimulator, zero: ZeroClient) -> None:
    zero.create_policy(props("jit", [ppl.DENY_ALL_RULE]))
    state = requests.get(f"{sim.root_url}/_sim/state", timeout=5).json()
    assert [p["name"] for p in state["policies"]] == ["jit"]
    assert state["policies"][0]["effectivePpl"] == [ppl.DENY_ALL_RULE]
    assert state["writeCount"] == 1

    assert requests.post(f"{sim.root_url}/_sim/reset", timeout=5).status_code == 204
    assert sim.policy_by_name("jit") is None
    assert zero.list_policies() == []  # the cached ID token still works


def test_stop_closes_kept_alive_connections(sim: ZeroSimulator, zero: ZeroClient) -> None:
    zero.namespace_id()
    sim.stop()
    with pytest.raises(ZeroTransientError):
        zero.cluster_settings()


def test_command_line_prints_its_url() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "apps.zero.simulator", "--port", "0", "--org", "org-cli"],
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
        token = requests.post(f"{url}/token", json={"refreshToken": "sim-api-token"}, timeout=5)
        assert json.loads(token.text)["expiresInSeconds"] == "3600"
        client = ZeroClient(url, "sim-api-token", "org-cli", "cluster-sim")
        assert client.namespace_id() == "ns-sim"
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert process.returncode == 0
