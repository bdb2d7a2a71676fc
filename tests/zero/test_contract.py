"""The Zero simulator holds to the written contract, over real HTTP.

Driven with ``requests`` through ``ContractProbe`` (never the portal's client):
every successful answer is validated against its schema as it arrives.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from apps.pomerium import contract
from devtools.zerosim.handler import API_ENDPOINTS
from devtools.zerosim.probe import ContractProbe
from devtools.zerosim.simulator import ZeroSimulator

POLICIES = "/organizations/{org}/policies"
CHANGESETS = "/organizations/{org}/changesets"
LOGS = "/organizations/{org}/activityLogs"
NS = "ns-sim"
ALICE_RULE = {"allow": {"and": [{"email": {"is": "alice@example.com"}}]}}
ANYONE_RULE = {"allow": {"and": [{"accept": True}]}}


def props(name: str = "jit-grafana", ppl: object = None, **extra: object) -> dict[str, Any]:
    return {
        "name": name,
        "description": "Managed by jitportal",
        "explanation": "You need a grant",
        "remediation": "Request access in the portal",
        "enforced": False,
        "namespaceId": NS,
        "ppl": [ALICE_RULE] if ppl is None else ppl,
        **extra,
    }


def wait_until(predicate: Callable[[], bool], attempts: int = 200) -> None:
    for _ in range(attempts):
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached")


@pytest.fixture
def sim() -> Iterator[ZeroSimulator]:
    with ZeroSimulator() as simulator:
        yield simulator


@pytest.fixture
def api(sim: ZeroSimulator) -> Iterator[ContractProbe]:
    probe = ContractProbe(sim.url, sim.api_token, sim.organization_id)
    yield probe
    probe.close()


def create(api: ContractProbe, body: dict[str, Any]) -> dict[str, Any]:
    answer = api.call("POST", POLICIES, json=body)
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def nothing_written(sim: ZeroSimulator) -> bool:
    return (
        sim.write_count == 0
        and sim.state.activity == []
        and sim.state.changesets == {}
        and sim.state.versions == {}
    )


# ------------------------------------------------------------ request bodies


def test_a_string_ppl_is_refused_with_400_and_changes_nothing(
    sim: ZeroSimulator, api: ContractProbe
) -> None:
    text = '[{"allow": {"and": [{"email": {"is": "alice@example.com"}}]}}]'
    answer = api.call("POST", POLICIES, json=props(ppl=text))
    assert answer.status_code == 400
    assert answer.json() == {
        "error": "body is not a valid PolicyProperties",
        "details": [f"$.ppl: {text!r} is not of type 'object', 'array'"],
    }
    assert nothing_written(sim)

    created = create(api, props())
    replaced = api.call("PUT", f"{POLICIES}/{created['id']}", json=props(ppl="allow: {}"))
    assert replaced.status_code == 400
    assert sim.policy_by_name("jit-grafana")["ppl"] == [ALICE_RULE]
    assert sim.write_count == 1


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({k: v for k, v in props().items() if k != "remediation"}, "'remediation' is a required"),
        (props(enforced="no"), "$.enforced: 'no' is not of type 'boolean'"),
        (props(id="p-1"), "('id' was unexpected)"),
        (props(ppl=[{"allow": {"and": [{"email_domain": "x.org"}]}}]), "'email_domain' is not"),
        (props(ppl=[{"allow": {"and": [{"date": {"after": "2026-02-30T00:00:00Z"}}]}}]), "day"),
        (props(ppl=[{"allow": {"and": [{"day_of_week": "mon-funday"}]}}]), "'funday'"),
        (props(ppl=[{"allow": {"and": [{"source_ip": "10.0.0.0/33"}]}}]), "source_ip"),
        (
            props(ppl=[{"allow": {"and": [{"time_of_day": {"timezone": "Mars/Base"}}]}}]),
            "required",
        ),
        (
            props(
                ppl=[{"allow": {"and": [{"time_of_day": {"timezone": "Mars/Base", "after": "9"}}]}}]
            ),
            "unknown time zone 'Mars/Base'",
        ),
        (props(namespaceId="ns-other"), "unknown namespaceId 'ns-other'"),
        (["not", "an", "object"], "is not of type 'object'"),
    ],
)
def test_invalid_policy_bodies_are_400_and_change_nothing(
    sim: ZeroSimulator, api: ContractProbe, body: object, detail: str
) -> None:
    answer = api.call("POST", POLICIES, json=body)
    assert answer.status_code == 400
    error = answer.json()
    assert any(detail in line for line in [error["error"], *error.get("details", [])]), error
    assert nothing_written(sim)


def test_a_put_must_carry_exactly_the_policy_properties(
    sim: ZeroSimulator, api: ContractProbe
) -> None:
    created = create(api, props())
    echoed = {**created, "ppl": [ANYONE_RULE]}  # a policy answer sent back as the body
    answer = api.call("PUT", f"{POLICIES}/{created['id']}", json=echoed)
    assert answer.status_code == 400
    assert "createdAt" in answer.json()["details"][0]
    assert sim.history("jit-grafana")[-1]["ppl"] == [ALICE_RULE]

    replaced = api.call("PUT", f"{POLICIES}/{created['id']}", json=props(ppl=[ANYONE_RULE]))
    assert replaced.status_code == 200
    assert replaced.json()["ppl"] == [ANYONE_RULE]
    assert replaced.json()["createdAt"] == created["createdAt"]
    assert sim.write_count == 2


def test_requests_outside_the_contract_are_refused(sim: ZeroSimulator, api: ContractProbe) -> None:
    def status(method: str, path: str, **kwargs: Any) -> tuple[int, str]:
        answer = api.call(method, path, **kwargs)
        return answer.status_code, answer.json()["error"]

    assert status("GET", POLICIES) == (400, "namespaceId is required")
    assert status("GET", POLICIES, params={"namespaceId": NS, "namespace": NS}) == (
        400,
        "unknown query parameter namespace",
    )
    assert status("GET", POLICIES, params={"namespaceId": NS, "limit": "-1"})[0] == 400
    assert status("GET", POLICIES, params={"namespaceId": NS, "orderBy": "createdAt"})[0] == 400
    assert status("GET", POLICIES, params={"namespaceId": NS, "filter": "{}"})[0] == 400
    assert status("GET", POLICIES + f"?namespaceId={NS}&limit=1&limit=2")[0] == 400
    assert status("GET", CHANGESETS, params={"status": "done"})[0] == 400
    assert status("GET", LOGS, params={"entityType": "policies"})[0] == 400
    assert status("GET", "/organizations/{org}/routes")[0] == 400  # namespaceId required
    assert status("GET", "/organizations/{org}/clusters", json={"x": 1}) == (
        400,
        "GET /organizations/{org}/clusters takes no request body",
    )
    assert status("POST", POLICIES, data=b"{}", headers={"Content-Type": "text/plain"})[0] == 415
    assert (
        status("POST", POLICIES, data=b"{nope", headers={"Content-Type": "application/json"})[0]
        == 400
    )
    assert status("POST", POLICIES)[0] == 400  # no body at all
    json_headers = {"Content-Type": "application/json"}
    twice = b'{"name": "a", "name": "b"}'
    assert status("POST", POLICIES, data=twice, headers=json_headers)[0] == 400
    assert status("POST", POLICIES, data=b'{"enforced": NaN}', headers=json_headers)[0] == 400
    assert status("PATCH", "/organizations/{org}/clusters")[0] == 405
    assert nothing_written(sim)


def test_json_patch_is_rfc_6902_and_the_result_must_still_be_valid(
    sim: ZeroSimulator, api: ContractProbe
) -> None:
    created = create(api, props())
    path = f"{POLICIES}/{created['id']}"
    bob = {"email": {"is": "bob@example.com"}}
    ok = api.call(
        "PATCH",
        path,
        json=[
            {"op": "test", "path": "/ppl/0/allow/and/0/email/is", "value": "alice@example.com"},
            {"op": "add", "path": "/ppl/0/allow/or", "value": [bob]},
            {"op": "replace", "path": "/description", "value": "patched"},
        ],
    )
    assert ok.status_code == 200
    assert ok.json()["ppl"] == [{"allow": {"and": ALICE_RULE["allow"]["and"], "or": [bob]}}]
    assert sim.evaluate("jit-grafana", "bob@example.com")

    refused = [
        [{"op": "remove", "path": "/explanation"}],  # a required property
        [{"op": "replace", "path": "/ppl", "value": "allow: {}"}],  # a string ppl
        [{"op": "test", "path": "/description", "value": "other"}],
        [{"op": "replace", "path": "/nothing", "value": 1}],
        [{"op": "replace", "path": "/ppl"}],  # no value
        [],
    ]
    for operations in refused:
        answer = api.call("PATCH", path, json=operations)
        assert answer.status_code == 400, operations
    assert sim.write_count == 2
    assert sim.policy_by_name("jit-grafana")["description"] == "patched"


# ------------------------------------------------------------------ answers


def test_every_answer_of_every_endpoint_validates(sim: ZeroSimulator, api: ContractProbe) -> None:
    sim.configure(auto_apply=False, apply_delay=0)
    created = create(api, props(ppl={}))  # jit-example's first body: an empty rule object
    assert created["ppl"] == {}
    sim.add_route("grafana", "https://grafana.example.com", [created["id"]])
    pid = created["id"]
    api.call("PUT", f"{POLICIES}/{pid}", json=props(ppl=[ALICE_RULE], enforced=True))
    api.call(
        "PATCH", f"{POLICIES}/{pid}", json=[{"op": "replace", "path": "/remediation", "value": "x"}]
    )
    sim.hand_edit("jit-grafana", [ALICE_RULE, ANYONE_RULE])
    second = create(api, props("scratch"))
    assert api.call("DELETE", f"{POLICIES}/{second['id']}").status_code == 204

    (pending,) = api.call("GET", CHANGESETS, params={"status": "pending"}).json()
    assert api.call("POST", f"{CHANGESETS}/{pending['id']}/apply").json()["status"] == "applied"
    for method, path, params in [
        ("GET", "/organizations/{org}/clusters", {}),
        ("GET", f"/organizations/{{org}}/clusters/{sim.cluster_id}", {}),
        ("GET", f"/organizations/{{org}}/clusters/{sim.cluster_id}/settings", {}),
        ("GET", "/organizations/{org}/namespaces", {}),
        ("GET", POLICIES, {"namespaceId": NS, "orderBy": "-updatedAt,name"}),
        ("GET", f"{POLICIES}/{pid}", {}),
        ("GET", "/organizations/{org}/routes", {"namespaceId": NS}),
        ("GET", CHANGESETS, {"clusterId": sim.cluster_id, "orderBy": "-createdAt"}),
        ("GET", LOGS, {"entityType": "policy", "orderBy": "-updatedAt"}),
        ("GET", LOGS, {"changesetId": pending["id"], "userId": "api-user-sim"}),
    ]:
        answer = api.call(method, path, params=params)
        assert answer.status_code == 200, (path, answer.text)

    expected = {(e.method, e.template) for e in API_ENDPOINTS}
    assert set(api.checked) == expected
    # Every answer also validates when read back raw, here for the richest one:
    contract.validate("ActivityLogList", api.call("GET", LOGS).json())


def test_answers_carry_no_invented_keys(sim: ZeroSimulator, api: ContractProbe) -> None:
    sim.configure(auto_apply=False)
    create(api, props())
    (changeset,) = api.call("GET", CHANGESETS).json()
    assert set(changeset) == {"id", "namespaceId", "status", "createdAt", "updatedAt"}
    (entry,) = api.call("GET", LOGS).json()
    assert set(entry["applied"]) == {"by", "changesetId"}  # no "at" until applied, never null
    token = api.call("POST", "/token", json={"refreshToken": sim.api_token}, auth=False).json()
    assert token["expiresInSeconds"] == "3600"


# ------------------------------------------------------------------- paging


def test_every_list_is_capped_below_what_the_client_asks_for(
    sim: ZeroSimulator, api: ContractProbe
) -> None:
    ids = [create(api, props(f"p{i:02}"))["id"] for i in range(25)]
    for i in range(12):
        sim.add_route(f"r{i:02}", f"https://r{i:02}.example.com", ids[:1])

    first = api.call("GET", POLICIES, params={"namespaceId": NS, "limit": 100})
    assert len(first.json()) == 10  # the server's cap, not the 100 asked for
    tail = api.call("GET", POLICIES, params={"namespaceId": NS, "limit": 100, "offset": 20})
    assert len(tail.json()) == 5
    few = api.call("GET", POLICIES, params={"namespaceId": NS, "limit": 3})
    assert len(few.json()) == 3

    policies, pages = api.list_all(POLICIES, namespaceId=NS, orderBy="name")
    assert [p["name"] for p in policies] == [f"p{i:02}" for i in range(25)]
    assert pages == 4  # 10 + 10 + 5 + the empty page
    routes, _ = api.list_all("/organizations/{org}/routes", namespaceId=NS)
    assert len(routes) == 12
    entries, _ = api.list_all(LOGS)
    assert len(entries) == 25
    assert len(api.call("GET", LOGS).json()) == 10

    sim.configure(max_page_size=50)
    assert len(api.call("GET", POLICIES, params={"namespaceId": NS, "limit": 100}).json()) == 25


def test_default_order_is_stable_across_calls(sim: ZeroSimulator, api: ContractProbe) -> None:
    names = [create(api, props(f"p{i:02}"))["name"] for i in range(8)]
    listed = [p["name"] for p in api.call("GET", POLICIES, params={"namespaceId": NS}).json()]
    again = [p["name"] for p in api.call("GET", POLICIES, params={"namespaceId": NS}).json()]
    assert sorted(listed) == names
    assert listed == again  # stable: paging is safe


def test_a_rule_object_can_come_back_as_a_list_of_one(
    sim: ZeroSimulator, api: ContractProbe
) -> None:
    created = create(api, props(ppl=ALICE_RULE))
    assert created["ppl"] == ALICE_RULE  # as sent, by default
    sim.configure(ppl_as_array=True)
    assert api.call("GET", f"{POLICIES}/{created['id']}").json()["ppl"] == [ALICE_RULE]
    listed = api.call("GET", POLICIES, params={"namespaceId": NS}).json()
    assert [p["ppl"] for p in listed] == [[ALICE_RULE]]
    assert sim.evaluate("jit-grafana", "alice@example.com")  # the same policy


# --------------------------------------------------------------- changesets


def test_one_pending_changeset_collects_api_writes_and_hand_edits(
    sim: ZeroSimulator, api: ContractProbe
) -> None:
    sim.auto_apply = False
    ours = create(api, props())
    foreign = sim.hand_create("wiki-admins", [ANYONE_RULE], by_email="carol@example.com")
    sim.hand_edit("jit-grafana", [ALICE_RULE, ANYONE_RULE], by_email="mallory@example.com")

    changesets = api.call("GET", CHANGESETS).json()
    assert len(changesets) == 1
    (pending,) = changesets
    assert pending["status"] == "pending"
    assert pending["namespaceId"] == NS

    entries = api.call("GET", LOGS, params={"changesetId": pending["id"]}).json()
    assert sorted((e["entity"]["id"], e["user"]["email"]) for e in entries) == sorted(
        [
            (ours["id"], "api@sim"),
            (foreign["id"], "carol@example.com"),
            (ours["id"], "mallory@example.com"),
        ]
    )
    assert all("at" not in e["applied"] for e in entries)
    assert all(e["applied"]["by"] == {} for e in entries)
    with pytest.raises(KeyError):
        sim.evaluate("jit-grafana", "alice@example.com")  # nothing applied yet
    # The API shows the latest (pending) version; the proxy enforces nothing.
    assert api.call("GET", f"{POLICIES}/{ours['id']}").json()["ppl"] == [ALICE_RULE, ANYONE_RULE]
    assert sim.write_count == 1


def test_concurrent_writes_share_the_one_pending_changeset(sim: ZeroSimulator) -> None:
    sim.auto_apply = False
    probes = [ContractProbe(sim.url, sim.api_token, sim.organization_id) for _ in range(8)]

    def write(i: int) -> int:
        return probes[i % 8].call("POST", POLICIES, json=props(f"p{i:02}")).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(write, range(40)))
    assert statuses == [201] * 40
    assert sim.write_count == 40
    (pending,) = sim.changesets()
    linked = {e["applied"]["changesetId"] for e in sim.state.activity_logs()}
    assert linked == {pending["id"]}
    assert len(sim.state.activity_logs()) == 40
    for probe in probes:
        probe.close()


def test_apply_answers_applying_then_applied_and_the_newest_reads_current(
    sim: ZeroSimulator, api: ContractProbe
) -> None:
    sim.configure(auto_apply=False, apply_delay=0.1)
    created = create(api, props())
    (first,) = api.call("GET", CHANGESETS).json()

    started = api.call("POST", f"{CHANGESETS}/{first['id']}/apply").json()
    assert started["status"] == "applying"
    assert started["id"] == first["id"]
    with pytest.raises(KeyError):
        sim.evaluate("jit-grafana", "alice@example.com")  # not before it is applied
    again = api.call("POST", f"{CHANGESETS}/{first['id']}/apply").json()
    assert again["status"] in ("applying", "applied")  # idempotent

    def status_of(changeset_id: str) -> str:
        found = [c for c in api.call("GET", CHANGESETS).json() if c["id"] == changeset_id]
        return found[0]["status"]

    wait_until(lambda: status_of(first["id"]) == "current")
    assert sim.evaluate("jit-grafana", "alice@example.com")
    (entry,) = api.call("GET", LOGS, params={"entityId": created["id"]}).json()
    assert entry["applied"]["changesetId"] == first["id"]
    assert entry["applied"]["by"]["email"] == "api@sim"
    assert "at" in entry["applied"]

    api.call("PUT", f"{POLICIES}/{created['id']}", json=props(ppl=[ANYONE_RULE]))
    second = api.call("GET", CHANGESETS, params={"status": "pending"}).json()[0]
    assert second["id"] != first["id"]
    sim.configure(apply_delay=0)
    assert api.call("POST", f"{CHANGESETS}/{second['id']}/apply").json()["status"] == "applied"
    assert status_of(second["id"]) == "current"
    assert status_of(first["id"]) == "applied"
    assert sim.evaluate("jit-grafana", "anyone@example.com")
    assert [
        c["status"] for c in api.call("GET", CHANGESETS, params={"status": "current"}).json()
    ] == ["current"]


def test_a_failed_changeset_never_takes_effect(sim: ZeroSimulator, api: ContractProbe) -> None:
    create(api, props())  # auto-applied: alice is in
    sim.configure(auto_apply=False, apply_delay=0.05, apply_failure=("failed", "route conflict"))
    pid = sim.policy_by_name("jit-grafana")["id"]
    api.call("PUT", f"{POLICIES}/{pid}", json=props(ppl=[ANYONE_RULE]))
    (pending,) = api.call("GET", CHANGESETS, params={"status": "pending"}).json()

    assert api.call("POST", f"{CHANGESETS}/{pending['id']}/apply").json()["status"] == "applying"
    wait_until(lambda: api.call("GET", CHANGESETS, params={"status": "failed"}).json() != [])
    (failed,) = api.call("GET", CHANGESETS, params={"status": "failed"}).json()
    assert failed["failureMessage"] == "route conflict"
    assert not sim.evaluate("jit-grafana", "anyone@example.com")
    assert sim.evaluate("jit-grafana", "alice@example.com")
    update = api.call("GET", LOGS, params={"changesetId": pending["id"]}).json()
    assert [("at" in e["applied"]) for e in update] == [False]
    refused = api.call("POST", f"{CHANGESETS}/{pending['id']}/apply")
    assert refused.status_code == 409

    # The next write opens a new pending changeset; the cluster may also reject one.
    sim.configure(apply_failure=None)
    api.call(
        "PATCH", f"{POLICIES}/{pid}", json=[{"op": "replace", "path": "/description", "value": "x"}]
    )
    (fresh,) = api.call("GET", CHANGESETS, params={"status": "pending"}).json()
    rejected = requests.post(
        f"{sim.root_url}/_sim/changesets/{fresh['id']}/fail",
        json={"status": "rejected", "message": "policy limit reached"},
        timeout=5,
    ).json()
    assert rejected["status"] == "rejected"
    assert rejected["failureMessage"] == "policy limit reached"
    assert contract.errors("Changeset", rejected) == []


def test_auto_apply_enforces_at_once_without_a_changeset(
    sim: ZeroSimulator, api: ContractProbe
) -> None:
    created = create(api, props())
    assert sim.evaluate("jit-grafana", "alice@example.com")
    (entry,) = api.call("GET", LOGS).json()
    assert entry["applied"]["by"]["email"] == "api@sim"
    assert "at" in entry["applied"]
    assert "changesetId" not in entry["applied"]
    assert api.call("GET", CHANGESETS).json() == []

    sim.configure(record_auto_applied=True)
    api.call("PUT", f"{POLICIES}/{created['id']}", json=props(ppl=[ANYONE_RULE]))
    newest = api.call("GET", LOGS, params={"activityType": "update"}).json()[0]
    (changeset,) = api.call("GET", CHANGESETS).json()
    assert newest["applied"]["changesetId"] == changeset["id"]
    assert changeset["status"] == "current"


def test_activity_log_filters_and_who_made_each_write(
    sim: ZeroSimulator, api: ContractProbe
) -> None:
    created = create(api, props())
    other = create(api, props("other"))
    sim.hand_edit("jit-grafana", [ANYONE_RULE], by_email="mallory@example.com")
    api.call("DELETE", f"{POLICIES}/{other['id']}")

    def entries(**params: str) -> list[tuple[str, str]]:
        found = api.call("GET", LOGS, params=params).json()
        return [(e["activityType"], e["user"].get("email", "")) for e in found]

    assert entries(entityId=created["id"]) == [
        ("update", "mallory@example.com"),
        ("create", "api@sim"),
    ]
    assert entries(entityId=created["id"], orderBy="updatedAt")[0] == ("create", "api@sim")
    assert entries(userId="api-user-sim") == [
        ("delete", "api@sim"),
        ("create", "api@sim"),
        ("create", "api@sim"),
    ]
    assert entries(activityType="delete", entityType="policy", namespaceId=NS) == [
        ("delete", "api@sim")
    ]
    assert entries(changesetId="nope") == []
    deleted = api.call("GET", LOGS, params={"activityType": "delete"}).json()[0]
    assert deleted["entity"]["data"]["name"] == "other"


# ------------------------------------------------------- clusters, settings


@pytest.mark.parametrize("refusal", [403, 404])
def test_the_narrow_cluster_read_can_be_refused(
    sim: ZeroSimulator, api: ContractProbe, refusal: int
) -> None:
    one = f"/organizations/{{org}}/clusters/{sim.cluster_id}"
    assert api.call("GET", one).json()["namespaceId"] == NS
    sim.configure(cluster_read_status=refusal)
    assert api.call("GET", one).status_code == refusal
    assert api.call("GET", "/organizations/{org}/clusters").json()[0]["namespaceId"] == NS

    control = requests.post(
        f"{sim.root_url}/_sim/settings",
        json={"clusterReadStatus": 200, "clusterListStatus": 403},
        timeout=5,
    )
    assert control.json()["clusterReadStatus"] == 200
    assert api.call("GET", one).status_code == 200
    assert api.call("GET", "/organizations/{org}/clusters").status_code == 403
    assert api.call("GET", "/organizations/{org}/clusters/other").status_code == 404


def test_settings_show_auto_apply(sim: ZeroSimulator, api: ContractProbe) -> None:
    path = f"/organizations/{{org}}/clusters/{sim.cluster_id}/settings"
    assert api.call("GET", path).json()["autoApplyChangesets"] is True
    requests.post(f"{sim.root_url}/_sim/settings", json={"autoApplyChangesets": False}, timeout=5)
    assert api.call("GET", path).json()["autoApplyChangesets"] is False
    bad = requests.post(f"{sim.root_url}/_sim/settings", json={"autoApply": False}, timeout=5)
    assert bad.status_code == 400


# ------------------------------------------------------------ undefined codes


def test_missing_things_are_404(sim: ZeroSimulator, api: ContractProbe) -> None:
    created = create(api, props())
    assert api.call("GET", f"{POLICIES}/nope").status_code == 404
    assert api.call("PUT", f"{POLICIES}/nope", json=props()).status_code == 404
    assert api.call("DELETE", f"{POLICIES}/nope").status_code == 404
    assert api.call("POST", f"{CHANGESETS}/nope/apply").status_code == 404
    assert api.call("GET", CHANGESETS, params={"clusterId": "other"}).status_code == 404
    assert (
        api.call("GET", "/organizations/other/policies", params={"namespaceId": NS}).status_code
        == 404
    )
    assert api.call("DELETE", f"{POLICIES}/{created['id']}").status_code == 204
    assert api.call("GET", f"{POLICIES}/{created['id']}").status_code == 404
    assert api.call("GET", "/nothing/here").status_code == 404


def test_duplicate_names_are_409_unless_allowed(sim: ZeroSimulator, api: ContractProbe) -> None:
    first = create(api, props())
    other = create(api, props("other"))
    assert api.call("POST", POLICIES, json=props()).status_code == 409
    renamed = api.call("PUT", f"{POLICIES}/{other['id']}", json=props())
    assert renamed.status_code == 409
    assert sim.write_count == 2

    sim.configure(allow_duplicate_names=True)
    twin = create(api, props(ppl=[ANYONE_RULE]))
    listed = api.call("GET", POLICIES, params={"namespaceId": NS}).json()
    assert sorted(p["id"] for p in listed if p["name"] == "jit-grafana") == sorted(
        [first["id"], twin["id"]]
    )
    with pytest.raises(ValueError, match="2 applied policies"):
        sim.evaluate("jit-grafana", "alice@example.com")
    assert sim.evaluate(twin["id"], "bob@example.com")
    evaluate = requests.get(
        f"{sim.root_url}/_sim/evaluate",
        params={"policy": "jit-grafana", "email": "alice@example.com"},
        timeout=5,
    )
    assert evaluate.status_code == 409


def test_bad_tokens_are_401(sim: ZeroSimulator, api: ContractProbe) -> None:
    url = f"{sim.url}/organizations/{sim.organization_id}/clusters"
    assert requests.get(url, timeout=5).status_code == 401
    forged = requests.get(url, headers={"Authorization": "Bearer forged"}, timeout=5)
    assert forged.status_code == 401
    wrong = api.call("POST", "/token", json={"refreshToken": "not-it"}, auth=False)
    assert wrong.status_code == 401
    assert "not-it" not in wrong.text
    extra = api.call("POST", "/token", json={"refreshToken": sim.api_token, "x": 1}, auth=False)
    assert extra.status_code == 400
    scheme = api.call(
        "GET", "/organizations/{org}/clusters", headers={"Authorization": "Pomerium " + api.token()}
    )
    assert scheme.status_code == 200
    sim.expire_tokens()
    assert api.call("GET", "/organizations/{org}/clusters").status_code == 401


# ------------------------------------------------------------------- faults


def test_applied_then_502_leaves_the_write_in_place(sim: ZeroSimulator, api: ContractProbe) -> None:
    api.token()
    sim.set_faults(lost_write_rate=1.0)
    lost = api.call("POST", POLICIES, json=props())
    assert lost.status_code == 502
    assert sim.write_count == 1
    assert sim.lost_answer_count == 1
    found = sim.policy_by_name("jit-grafana")
    assert found is not None
    assert sim.evaluate("jit-grafana", "alice@example.com")
    (entry,) = api.call("GET", LOGS).json()
    assert entry["user"]["id"] == "api-user-sim"  # the log names who wrote it
    # Reads are never lost; a retried create meets the write it already made.
    assert api.call("GET", f"{POLICIES}/{found['id']}").status_code == 200
    assert api.call("POST", POLICIES, json=props()).status_code == 409
    sim.set_faults(lost_write_rate=0.0)
    assert api.call("PUT", f"{POLICIES}/{found['id']}", json=props()).status_code == 200


def test_a_rate_limit_episode_answers_429_then_recovers(
    sim: ZeroSimulator, api: ContractProbe
) -> None:
    api.token()
    requests.post(f"{sim.root_url}/_sim/faults", json={"rate_limit_seconds": 0.3}, timeout=5)
    limited = api.call("GET", "/organizations/{org}/clusters")
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "1"
    token = api.call("POST", "/token", json={"refreshToken": sim.api_token}, auth=False)
    assert token.status_code == 429  # /token too
    refused_write = api.call("POST", POLICIES, json=props())
    assert refused_write.status_code == 429
    assert sim.write_count == 0

    wait_until(lambda: api.call("GET", "/organizations/{org}/clusters").status_code == 200)
    assert create(api, props())["name"] == "jit-grafana"
    assert sim.rate_limited_count >= 3
    assert sim.faults()["rate_limited_seconds_left"] == 0.0


def test_answers_validate_under_a_copy_of_a_real_client_flow(
    sim: ZeroSimulator, api: ContractProbe
) -> None:
    # The flow issue 10 describes: find our write's changeset through the log, read its status.
    sim.configure(auto_apply=False, apply_delay=0)
    created = create(api, props())
    (entry,) = api.call(
        "GET", LOGS, params={"entityId": created["id"], "orderBy": "-updatedAt"}
    ).json()
    changeset_id = entry["applied"]["changesetId"]
    others = [
        e
        for e in api.list_all(LOGS, changesetId=changeset_id)[0]
        if e["user"].get("id") != "api-user-sim"
    ]
    assert others == []  # only our write: safe to apply
    applied = api.call("POST", f"{CHANGESETS}/{changeset_id}/apply").json()
    assert applied["status"] in ("applied", "current")
    assert sim.evaluate("jit-grafana", "alice@example.com")
    (after,) = api.call("GET", LOGS, params={"changesetId": changeset_id}).json()
    assert after["applied"]["at"] >= after["createdAt"]
