"""The Zero wire contract (apps/pomerium/contract): the schemas themselves, without HTTP."""

from __future__ import annotations

import copy

import pytest
from jsonschema import Draft202012Validator

from apps.pomerium import contract

STAMP = "2026-09-01T09:00:00.000Z"
RULE = {
    "allow": {
        "and": [
            {"email": {"is": "First.Last@Corp.com"}},
            {"date": {"after": "2026-09-01T09:00:00Z", "before": "2026-09-01T17:00:00Z"}},
        ]
    }
}
PROPS = {
    "name": "jit-grafana",
    "description": "d",
    "explanation": "e",
    "remediation": "r",
    "enforced": False,
    "namespaceId": "ns-1",
    "ppl": [RULE],
}
POLICY = {
    **PROPS,
    "id": "p-1",
    "createdAt": STAMP,
    "updatedAt": STAMP,
    "routes": [{"id": "r-1", "name": "wiki", "updatedAt": STAMP}],
    "enforcedRoutes": [],
}
CHANGESET = {
    "id": "c-1",
    "namespaceId": "ns-1",
    "status": "pending",
    "createdAt": STAMP,
    "updatedAt": STAMP,
}
ACTIVITY = {
    "id": "a-1",
    "activityType": "update",
    "createdAt": STAMP,
    "updatedAt": STAMP,
    "entity": {"id": "p-1", "type": "policy", "data": {"name": "jit-grafana"}},
    "user": {"id": "u-1", "email": "api@example.com"},
    "namespace": {"id": "ns-1", "name": "cluster"},
    "applied": {"by": {"id": "u-1"}, "changesetId": "c-1"},
}


@pytest.mark.parametrize("name", contract.SCHEMA_NAMES)
def test_every_schema_is_valid_draft_2020_12_and_loads(name: str) -> None:
    document = contract.schema(name)
    Draft202012Validator.check_schema(document)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert document["$id"].endswith(f"/{name}.json")
    contract.errors(name, {})  # every $ref resolves offline


def test_unknown_schema_name_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        contract.errors("Nope", {})


def test_valid_examples_pass() -> None:
    assert contract.errors("PolicyProperties", PROPS) == []
    assert contract.errors("PolicyProperties", {**PROPS, "ppl": RULE, "originatorId": "x"}) == []
    assert contract.errors("Policy", POLICY) == []
    assert contract.errors("PolicyList", [POLICY, POLICY]) == []
    assert contract.errors("Changeset", {**CHANGESET, "failureMessage": "boom"}) == []
    assert contract.errors("ActivityLog", ACTIVITY) == []
    assert contract.errors("TokenResponse", {"idToken": "t", "expiresInSeconds": "3600"}) == []


def test_a_string_ppl_is_refused_with_a_readable_message() -> None:
    found = contract.errors("PolicyProperties", {**PROPS, "ppl": '[{"allow": {}}]'})
    assert found == ["$.ppl: '[{\"allow\": {}}]' is not of type 'object', 'array'"]
    with pytest.raises(contract.ContractError) as info:
        contract.validate("PolicyProperties", {**PROPS, "ppl": "allow: {}"})
    assert isinstance(info.value, ValueError)
    assert info.value.errors == ["$.ppl: 'allow: {}' is not of type 'object', 'array'"]


def test_request_bodies_need_every_key_and_refuse_unknown_ones() -> None:
    for key in ("name", "description", "explanation", "remediation", "enforced", "namespaceId"):
        partial = {k: v for k, v in PROPS.items() if k != key}
        assert contract.errors("PolicyProperties", partial) == [
            f"$: '{key}' is a required property"
        ]
    echoed = {**PROPS, "id": "p-1", "routes": []}  # a policy answer sent back as a body
    assert contract.errors("PolicyProperties", echoed) == [
        "$: Additional properties are not allowed ('id', 'routes' were unexpected)"
    ]
    assert contract.errors("PolicyProperties", {**PROPS, "enforced": "false"}) == [
        "$.enforced: 'false' is not of type 'boolean'"
    ]
    assert contract.errors("TokenRequest", {"refreshToken": "t", "extra": 1}) != []


def test_changeset_has_exactly_its_keys() -> None:
    invented = {**CHANGESET, "appliedAt": STAMP, "changes": []}
    assert contract.errors("Changeset", invented) == [
        "$: Additional properties are not allowed ('appliedAt', 'changes' were unexpected)"
    ]
    assert contract.errors("Changeset", {**CHANGESET, "status": "done"}) == [
        "$.status: 'done' is not one of "
        "['pending', 'applying', 'applied', 'current', 'failed', 'rejected']"
    ]


def test_timestamps_need_a_zone_and_a_real_date() -> None:
    assert contract.errors("Changeset", {**CHANGESET, "createdAt": "2026-09-01T09:00:00"}) == [
        "$.createdAt: '2026-09-01T09:00:00' is not a 'date-time'"
    ]
    assert contract.errors("Changeset", {**CHANGESET, "updatedAt": "2026-02-30T09:00:00Z"}) == [
        "$.updatedAt: '2026-02-30T09:00:00Z' is not a 'date-time'"
    ]
    assert (
        contract.errors("Changeset", {**CHANGESET, "updatedAt": "2026-02-28T09:00:00+01:00"}) == []
    )


def test_activity_log_applied_at_is_absent_not_null() -> None:
    entry = copy.deepcopy(ACTIVITY)
    entry["applied"]["at"] = None
    assert contract.errors("ActivityLog", entry) == ["$.applied.at: None is not of type 'string'"]
    del entry["applied"]["by"]
    assert "$.applied: 'by' is a required property" in contract.errors("ActivityLog", entry)


def test_token_expiry_is_a_string() -> None:
    assert contract.errors("TokenResponse", {"idToken": "t", "expiresInSeconds": 3600}) == [
        "$.expiresInSeconds: 3600 is not of type 'string'"
    ]


@pytest.mark.parametrize(
    "ppl",
    [
        {},
        [],
        {"allow": {}},
        [{"allow": {"and": []}}, {"deny": {"or": [{"reject": True}]}}],
        [{"allow": {"and": [{"email": "a@x.org"}, {"user": {"not_in": ["b", "c"]}}]}}],
        [{"allow": {"or": [{"claim/groups": "admins"}, {"mcp_tool": {"is": "search"}}]}}],
        [{"allow": {"and": [{"ssh_username": "root"}, {"ssh_username_matches_email": True}]}}],
        [{"allow": {"and": [{"date": {"after": "2150-01-02T16:20:00"}}]}}],
        [{"allow": {"and": [{"day_of_week": "fri-mon"}, {"source_ip": ["10.0.0.0/8"]}]}}],
        [{"allow": {"and": [{"time_of_day": {"timezone": "Europe/Berlin", "after": "9:00"}}]}}],
        [{"allow": {"nor": [{"http_method": {"in": ["POST"]}}, {"http_path": "/admin"}]}}],
    ],
)
def test_ppl_pomerium_accepts_is_accepted(ppl: object) -> None:
    assert contract.errors("PPL", ppl) == []


@pytest.mark.parametrize(
    ("ppl", "message"),
    [
        ("allow: {}", "$: 'allow: {}' is not of type 'object', 'array'"),
        ([{"allow": {}, "permit": {}}], "$[0]: Additional properties are not allowed"),
        ([{"allow": {"xor": []}}], "$[0].allow: Additional properties are not allowed"),
        ([{"allow": {"and": {"email": "a"}}}], "$[0].allow.and: {'email': 'a'} is not of type"),
        ([{"allow": {"and": [{"email_domain": "x"}]}}], "'email_domain' is not a criterion"),
        ([{"allow": {"and": [{}]}}], "$[0].allow.and[0]: {} should be non-empty"),
        ([{"allow": {"and": [{"email": "a", "user": "b"}]}}], "has too many properties"),
        ([{"allow": {"and": [{"email": {"equals": "a"}}]}}], "('equals' was unexpected)"),
        ([{"allow": {"and": [{"email": {"in": "a"}}]}}], "$[0].allow.and[0].email.in: 'a'"),
        ([{"allow": {"and": [{"date": {"after": "tomorrow"}}]}}], "does not match"),
        ([{"allow": {"and": [{"date": {}}]}}], "$[0].allow.and[0].date: {} should be non-empty"),
        ([{"allow": {"and": [{"time_of_day": {"after": "9:00"}}]}}], "'timezone' is a required"),
        ([{"allow": {"and": [{"day_of_week": ["mon"]}]}}], "is not of type 'string'"),
        ([{"allow": {"and": [{"source_ip": 10}]}}], "$[0].allow.and[0].source_ip"),
    ],
)
def test_ppl_structure_is_checked(ppl: object, message: str) -> None:
    found = contract.errors("PPL", ppl)
    assert found
    assert any(message in m for m in found), found


def test_json_patch_operations() -> None:
    assert contract.errors("JsonPatch", [{"op": "replace", "path": "/ppl", "value": []}]) == []
    assert contract.errors("JsonPatch", [{"op": "move", "from": "/a", "path": "/b"}]) == []
    assert contract.errors("JsonPatch", []) == ["$: [] should be non-empty"]
    assert contract.errors("JsonPatch", [{"op": "replace", "path": "/ppl"}]) == [
        "$[0]: 'value' is a required property"
    ]
    assert contract.errors("JsonPatch", [{"op": "frob", "path": "/ppl", "value": 1}]) != []


def test_open_answers_allow_more_keys_but_check_what_we_read() -> None:
    cluster = {
        "id": "c",
        "name": "n",
        "namespaceId": "ns",
        "domain": "d",
        "fqdn": "f",
        "createdAt": STAMP,
        "updatedAt": STAMP,
        "flavor": "hosted",
    }
    assert contract.errors("Cluster", cluster) == []
    assert contract.errors("Cluster", {**cluster, "namespaceId": 3}) == [
        "$.namespaceId: 3 is not of type 'string'"
    ]
    assert contract.errors("Settings", {"autoApplyChangesets": True, "logLevel": "info"}) == []
    assert contract.errors("Settings", {"autoApplyChangesets": "true"}) == [
        "$.autoApplyChangesets: 'true' is not of type 'boolean'"
    ]
