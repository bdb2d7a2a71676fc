"""apps.pomerium.configservice against a fake Core (tests/zero/fake_core.py, from the OpenAPI
document): transport, Core's JWT, Connect error codes, paging, the policy wire form, routes."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator

import jwt
import pytest
import responses

from apps.pomerium.client import ZeroPermanentError, ZeroTransientError
from apps.pomerium.configservice import JWT_LIFETIME, ConfigServiceClient
from tests.zero.fake_core import FakeCore

RULES = [{"allow": {"and": [{"email": {"is": "Alice@Example.com"}}]}}]
PROPS = {"name": "jit-grafana", "ppl": RULES, "explanation": "why", "remediation": "link"}


@pytest.fixture
def core() -> Iterator[FakeCore]:
    fake = FakeCore()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake.register(mock)
        yield fake


@pytest.fixture
def client(core: FakeCore) -> ConfigServiceClient:
    return ConfigServiceClient(core.url, target="edge", shared_secret=core.shared_secret)


def test_every_call_is_connect_json_with_a_fresh_exp_only_jwt(core, client) -> None:
    with responses.RequestsMock() as mock:
        mock.add(
            responses.POST,
            f"{core.url}/pomerium.config.ConfigService/GetServerInfo",
            json={"serverType": "SERVER_TYPE_CORE", "version": "v0.33.1"},
        )
        before = int(time.time())
        info = client.server_info()
        request = mock.calls[0].request
    assert info["serverType"] == "SERVER_TYPE_CORE"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Connect-Protocol-Version"] == "1"
    assert json.loads(request.body) == {}
    token = request.headers["jwt"]
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = jwt.decode(token, base64.b64decode(core.shared_secret), algorithms=["HS256"])
    assert set(claims) == {"exp"}
    assert before + JWT_LIFETIME <= claims["exp"] <= int(time.time()) + JWT_LIFETIME
    assert "Authorization" not in request.headers


def test_an_api_target_sends_its_token_as_bearer() -> None:
    client = ConfigServiceClient("https://console.example.com", api_token="tok-123")
    with responses.RequestsMock() as mock:
        mock.add(
            responses.POST,
            "https://console.example.com/pomerium.config.ConfigService/GetServerInfo",
            json={"serverType": "SERVER_TYPE_ENTERPRISE"},
        )
        client.server_info()
        request = mock.calls[0].request
    assert request.headers["Authorization"] == "Bearer tok-123"
    assert "jwt" not in request.headers


def test_policies_are_written_with_source_ppl_as_a_string_and_read_back_as_rules(
    core, client
) -> None:
    created = client.create_policy(PROPS)

    stored = core.policies[created["id"]]
    assert isinstance(stored["sourcePpl"], str)
    assert json.loads(stored["sourcePpl"]) == RULES
    assert stored["explanation"] == "why" and stored["remediation"] == "link"
    assert client.get_policy(created["id"])["ppl"] == RULES


def test_an_update_names_only_the_managed_fields(core, client) -> None:
    created = client.create_policy(PROPS)
    core.hand_edit(created["id"], allowedDomains=["example.com"])

    client.replace_policy(created["id"], {**PROPS, "ppl": [{"allow": {"and": [{"accept": 1}]}}]})

    method, body = core.bodies[-1]
    assert method == "UpdatePolicy"
    assert body["updateMask"] == "name,description,explanation,remediation,sourcePpl"
    assert core.policies[created["id"]]["allowedDomains"] == ["example.com"]  # untouched


def test_a_criterion_core_refuses_is_a_permanent_error_with_cores_message(core, client) -> None:
    dated = [{"allow": {"and": [{"date": {"after": "2026-01-01T00:00:00Z"}}]}}]

    with pytest.raises(ZeroPermanentError) as caught:
        client.create_policy({**PROPS, "ppl": dated})

    assert "invalid_argument: unknown policy criterion: date" in str(caught.value)
    assert caught.value.status == 400


@pytest.mark.parametrize(
    "code",
    ["unavailable", "deadline_exceeded", "resource_exhausted", "aborted", "internal", "unknown"],
)
def test_transient_codes_raise_transient_errors(core, client, code) -> None:
    core.faults.append(("ListPolicies", code, "try later"))

    with pytest.raises(ZeroTransientError, match=f"{code}: try later"):
        client.list_policies()


def test_a_missing_policy_is_not_found_with_status_404(client) -> None:
    with pytest.raises(ZeroPermanentError) as caught:
        client.get_policy("pol-missing")
    assert caught.value.status == 404 and "not_found" in str(caught.value)


def test_a_bad_shared_secret_is_permanent_and_never_shown(core) -> None:
    wrong = base64.b64encode(b"another-secret-of-thirty-two-byt").decode()
    client = ConfigServiceClient(core.url, shared_secret=wrong)

    with pytest.raises(ZeroPermanentError) as caught:
        client.server_info()

    assert "unauthenticated" in str(caught.value) and caught.value.status == 401
    assert wrong not in str(caught.value)


def test_a_jwt_echoed_by_the_server_is_redacted(core) -> None:
    client = ConfigServiceClient(core.url, shared_secret=core.shared_secret)
    with responses.RequestsMock() as mock:

        def echo(request):
            body = {"code": "permission_denied", "message": f"token {request.headers['jwt']}"}
            return 403, {}, json.dumps(body)

        mock.add_callback(
            responses.POST, f"{core.url}/pomerium.config.ConfigService/GetPolicy", callback=echo
        )
        with pytest.raises(ZeroPermanentError) as caught:
            client.get_policy("p")
    assert "[REDACTED]" in str(caught.value) and "eyJ" not in str(caught.value)


def test_paging_reads_every_policy_under_a_page_cap(core, client) -> None:
    for i in range(25):
        core.add_policy(name=f"foreign-{i}", sourcePpl="[]")

    listed = client.list_policies()

    assert len(listed) == 25 and len({p["id"] for p in listed}) == 25
    assert core.calls["ListPolicies"] == 3  # 10 + 10 + 5, then totalCount says done


def test_a_server_that_ignores_offset_cannot_keep_us_paging(client, core) -> None:
    page = {"policies": [{"id": "p1", "name": "a"}], "totalCount": "99"}
    with responses.RequestsMock() as mock:
        mock.add(
            responses.POST, f"{core.url}/pomerium.config.ConfigService/ListPolicies", json=page
        )
        listed = client.list_policies()
        assert len(mock.calls) == 2  # the second page brought nothing new
    assert [p["id"] for p in listed] == ["p1"]


def test_attaching_a_route_updates_only_policy_ids_and_skips_when_listed(core, client) -> None:
    core.add_route("r-1", name="grafana", to=["http://grafana:3000"], policyIds=["other"])

    assert client.attach_policy("r-1", "pol-9") is True
    assert client.attach_policy("r-1", "pol-9") is False

    route = core.routes["r-1"]
    assert route["policyIds"] == ["other", "pol-9"]
    assert route["to"] == ["http://grafana:3000"] and route["name"] == "grafana"
    updates = [body for method, body in core.bodies if method == "UpdateRoute"]
    assert updates == [
        {"route": {"id": "r-1", "policyIds": ["other", "pol-9"]}, "updateMask": "policyIds"}
    ]


def test_yaml_source_ppl_is_read_as_rules(core, client) -> None:
    policy = core.add_policy(name="y", sourcePpl="- allow:\n    and:\n      - accept: true\n")

    assert client.get_policy(policy["id"])["ppl"] == [{"allow": {"and": [{"accept": True}]}}]


def test_every_request_the_client_sends_validates_against_the_written_contract(
    core, client
) -> None:
    from apps.pomerium import configservice_contract

    core.add_route("r-1", policyIds=[])
    created = client.create_policy(PROPS)
    client.replace_policy(created["id"], PROPS)
    client.get_policy(created["id"])
    client.list_policies()
    client.list_routes()
    client.attach_policy("r-1", created["id"])
    client.delete_policy(created["id"])
    client.server_info()

    methods = {method for method, _ in core.bodies}
    assert methods == set(configservice_contract.METHODS)
    for method, body in core.bodies:
        assert configservice_contract.errors(f"{method}Request", body) == [], method
