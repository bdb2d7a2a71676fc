"""apps.pomerium.client against canned HTTP answers (``responses``)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import requests
import responses
from responses import matchers

from apps.pomerium.client import (
    ZeroClient,
    ZeroError,
    ZeroPermanentError,
    ZeroTransientError,
    _parse_retry_after,
    get_client,
    reset_client_cache,
)

BASE = "https://zero.test/api/v0"
ORG = f"{BASE}/organizations/org-1"
API_TOKEN = "api-user-token-SECRET-123"
ID_TOKEN = "id-token-SECRET-456"
SETTINGS_URL = f"{ORG}/clusters/cluster-1/settings"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def zc(clock: FakeClock) -> ZeroClient:
    return ZeroClient(BASE, API_TOKEN, "org-1", "cluster-1", clock=clock)


def add_token(
    rsps: responses.RequestsMock, token: str = ID_TOKEN, expires: object = "3600"
) -> responses.BaseResponse:
    return rsps.post(
        f"{BASE}/token",
        json={"idToken": token, "expiresInSeconds": expires},
        match=[matchers.json_params_matcher({"refreshToken": API_TOKEN})],
    )


def add_clusters(
    rsps: responses.RequestsMock, namespace: str | None = "ns-1", cluster: str = "cluster-1"
) -> responses.BaseResponse:
    """The narrow cluster read, ``GET /clusters/{id}`` (the client never lists all)."""
    ours: dict[str, object] = {"id": cluster, "name": "prod"}
    if namespace is not None:
        ours["namespaceId"] = namespace
    return rsps.get(f"{ORG}/clusters/{cluster}", json=ours)


def auth_headers(rsps: responses.RequestsMock) -> list[str | None]:
    return [c.request.headers.get("Authorization") for c in rsps.calls]


# ---------------------------------------------------------------------- tokens


def test_token_exchange_then_bearer(rsps: responses.RequestsMock, zc: ZeroClient) -> None:
    add_token(rsps)
    rsps.get(SETTINGS_URL, json={"autoApplyChangesets": True})

    assert zc.cluster_settings() == {"autoApplyChangesets": True}

    token_call, api_call = rsps.calls
    assert token_call.request.url == f"{BASE}/token"
    assert "Authorization" not in token_call.request.headers
    assert json.loads(token_call.request.body) == {"refreshToken": API_TOKEN}
    assert api_call.request.headers["Authorization"] == f"Bearer {ID_TOKEN}"


@pytest.mark.parametrize("expires", ["3600", 3600])
def test_expires_in_seconds_string_or_int(
    rsps: responses.RequestsMock, zc: ZeroClient, clock: FakeClock, expires: object
) -> None:
    add_token(rsps, expires=expires)
    rsps.get(SETTINGS_URL, json={})
    zc.cluster_settings()
    clock.now += 3600 - 61  # 61 s left: still good
    zc.cluster_settings()
    assert zc.calls[("POST", "/token")] == 1
    clock.now += 2  # 59 s left: renew
    zc.cluster_settings()
    assert zc.calls[("POST", "/token")] == 2


def test_token_cached_across_calls(rsps: responses.RequestsMock, zc: ZeroClient) -> None:
    token = add_token(rsps)
    rsps.get(SETTINGS_URL, json={})
    for _ in range(10):
        zc.cluster_settings()
    assert token.call_count == 1
    assert zc.calls[("POST", "/token")] == 1
    assert zc.calls[("GET", "/organizations/{org}/clusters/{cluster}/settings")] == 10


def test_token_renewed_when_less_than_60_seconds_left(
    rsps: responses.RequestsMock, zc: ZeroClient, clock: FakeClock
) -> None:
    rsps.post(
        f"{BASE}/token",
        json={"idToken": "first", "expiresInSeconds": "120"},
    )
    rsps.get(SETTINGS_URL, json={})
    zc.cluster_settings()
    clock.now += 59  # 61 s left
    zc.cluster_settings()
    rsps.replace(
        responses.POST, f"{BASE}/token", json={"idToken": "second", "expiresInSeconds": "120"}
    )
    clock.now += 2  # 59 s left
    zc.cluster_settings()
    assert auth_headers(rsps) == [None, "Bearer first", "Bearer first", None, "Bearer second"]


def test_malformed_token_answer_is_permanent(rsps: responses.RequestsMock, zc: ZeroClient) -> None:
    rsps.post(f"{BASE}/token", json={"idToken": ID_TOKEN})  # no expiresInSeconds
    with pytest.raises(ZeroPermanentError) as info:
        zc.cluster_settings()
    assert "expiresInSeconds" in str(info.value)
    assert ID_TOKEN not in str(info.value)


def test_rejected_api_token_is_permanent(rsps: responses.RequestsMock, zc: ZeroClient) -> None:
    rsps.post(f"{BASE}/token", status=401, json={"error": "bad refresh token"})
    with pytest.raises(ZeroPermanentError) as info:
        zc.cluster_settings()
    assert info.value.status == 401
    assert "POST /token returned 401" in str(info.value)


def test_missing_api_token_fails_before_any_request(rsps: responses.RequestsMock) -> None:
    client = ZeroClient(BASE, "", "org-1", "cluster-1")
    with pytest.raises(ZeroPermanentError, match="API_USER_TOKEN"):
        client.cluster_settings()
    assert len(rsps.calls) == 0


def test_401_renews_token_and_retries_once(rsps: responses.RequestsMock, zc: ZeroClient) -> None:
    rsps.post(f"{BASE}/token", json={"idToken": "old", "expiresInSeconds": "3600"})
    rsps.get(SETTINGS_URL, json={})
    zc.cluster_settings()

    rsps.replace(
        responses.POST, f"{BASE}/token", json={"idToken": "new", "expiresInSeconds": "3600"}
    )
    rsps.replace(responses.GET, SETTINGS_URL, status=401, json={"error": "expired"})
    rsps.add(responses.GET, SETTINGS_URL, json={"autoApplyChangesets": False})
    assert zc.cluster_settings() == {"autoApplyChangesets": False}
    assert auth_headers(rsps)[-3:] == ["Bearer old", None, "Bearer new"]


def test_second_401_is_permanent(rsps: responses.RequestsMock, zc: ZeroClient) -> None:
    add_token(rsps)
    settings = rsps.get(SETTINGS_URL, status=401, json={"error": "nope"})
    with pytest.raises(ZeroPermanentError) as info:
        zc.cluster_settings()
    assert info.value.status == 401
    assert info.value.transient is False
    assert settings.call_count == 2  # the original call and exactly one retry
    assert zc.calls[("POST", "/token")] == 2


def test_pomerium_auth_scheme(rsps: responses.RequestsMock, clock: FakeClock) -> None:
    add_token(rsps)
    rsps.get(SETTINGS_URL, json={})
    zc = ZeroClient(BASE, API_TOKEN, "org-1", "cluster-1", auth_scheme="Pomerium", clock=clock)
    zc.cluster_settings()
    assert auth_headers(rsps)[-1] == f"Pomerium {ID_TOKEN}"


# ---------------------------------------------------------------------- errors


def test_429_is_transient_with_retry_after(rsps: responses.RequestsMock, zc: ZeroClient) -> None:
    add_token(rsps)
    rsps.get(SETTINGS_URL, status=429, headers={"Retry-After": "7"}, json={"error": "slow down"})
    with pytest.raises(ZeroTransientError) as info:
        zc.cluster_settings()
    assert info.value.status == 429
    assert info.value.transient is True
    assert info.value.retry_after == 7.0


def test_retry_after_http_date() -> None:
    now = datetime(2026, 9, 1, 9, 0, tzinfo=UTC)
    assert _parse_retry_after("Tue, 01 Sep 2026 09:00:30 GMT", now) == 30.0
    assert _parse_retry_after("Tue, 01 Sep 2026 08:00:00 GMT", now) == 0.0
    assert _parse_retry_after("soon", now) is None
    assert _parse_retry_after(None, now) is None


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_transient(rsps: responses.RequestsMock, zc: ZeroClient, status: int) -> None:
    add_token(rsps)
    rsps.get(SETTINGS_URL, status=status, body="upstream trouble")
    with pytest.raises(ZeroTransientError) as info:
        zc.cluster_settings()
    assert info.value.status == status
    assert info.value.retry_after is None
    assert f"GET /organizations/org-1/clusters/cluster-1/settings returned {status}" in str(
        info.value
    )
    assert "upstream trouble" in str(info.value)


@pytest.mark.parametrize(
    "failure", [requests.ConnectionError("connection refused"), requests.ReadTimeout("slow")]
)
def test_network_errors_are_transient(
    rsps: responses.RequestsMock, zc: ZeroClient, failure: Exception
) -> None:
    add_token(rsps)
    rsps.get(SETTINGS_URL, body=failure)
    with pytest.raises(ZeroTransientError) as info:
        zc.cluster_settings()
    assert info.value.status is None
    assert "/clusters/cluster-1/settings" in str(info.value)


def test_token_endpoint_unreachable_is_transient(
    rsps: responses.RequestsMock, zc: ZeroClient
) -> None:
    rsps.post(f"{BASE}/token", body=requests.ConnectionError("down"))
    with pytest.raises(ZeroTransientError):
        zc.cluster_settings()


@pytest.mark.parametrize("status", [400, 403, 404, 409, 422])
def test_4xx_is_permanent(rsps: responses.RequestsMock, zc: ZeroClient, status: int) -> None:
    add_token(rsps)
    rsps.get(f"{ORG}/policies/p-1", status=status, json={"error": "no"})
    with pytest.raises(ZeroPermanentError) as info:
        zc.get_policy("p-1")
    assert info.value.status == status
    assert info.value.transient is False
    assert isinstance(info.value, ZeroError)


def test_error_body_is_truncated(rsps: responses.RequestsMock, zc: ZeroClient) -> None:
    add_token(rsps)
    rsps.get(SETTINGS_URL, status=400, body="x" * 1000)
    with pytest.raises(ZeroPermanentError) as info:
        zc.cluster_settings()
    assert "x" * 200 + "..." in str(info.value)
    assert "x" * 201 not in str(info.value)


def test_non_json_success_is_permanent(rsps: responses.RequestsMock, zc: ZeroClient) -> None:
    add_token(rsps)
    rsps.get(SETTINGS_URL, body="<html>login</html>", content_type="text/html")
    with pytest.raises(ZeroPermanentError, match="non-JSON"):
        zc.cluster_settings()


def test_tokens_never_leak_into_errors_or_logs(
    rsps: responses.RequestsMock, zc: ZeroClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    add_token(rsps)
    echo = json.dumps({"error": "bad request", "refreshToken": API_TOKEN, "token": ID_TOKEN})
    rsps.get(SETTINGS_URL, status=500, body=echo)
    rsps.get(f"{ORG}/clusters/cluster-1", status=400, body=f"Authorization: Bearer {ID_TOKEN}")

    failures = []
    with pytest.raises(ZeroTransientError) as info:
        zc.cluster_settings()
    failures.append(info.value)
    with pytest.raises(ZeroPermanentError) as info2:
        zc.namespace_id()
    failures.append(info2.value)

    # And on the token endpoint itself.
    rsps.replace(responses.POST, f"{BASE}/token", status=403, body=f"refresh {API_TOKEN} refused")
    fresh = ZeroClient(BASE, API_TOKEN, "org-1", "cluster-1")
    with pytest.raises(ZeroPermanentError) as info3:
        fresh.cluster_settings()
    failures.append(info3.value)

    for exc in failures:
        text = f"{exc} {exc!r} {exc.args}"
        assert API_TOKEN not in text
        assert ID_TOKEN not in text
        assert "[REDACTED]" in text
    assert "returned 500" in str(failures[0])
    assert API_TOKEN not in caplog.text
    assert ID_TOKEN not in caplog.text
    assert "Zero API GET" in caplog.text  # logging did happen
    assert API_TOKEN not in repr(zc)


# ------------------------------------------------------------------ operations


def test_namespace_id_read_from_the_one_cluster_and_cached(
    rsps: responses.RequestsMock, zc: ZeroClient
) -> None:
    add_token(rsps)
    narrow = add_clusters(rsps, namespace="ns-1")
    listing = rsps.get(
        f"{ORG}/policies",
        json=[],
        match=[matchers.query_param_matcher({"namespaceId": "ns-1"}, strict_match=False)],
    )
    assert zc.namespace_id() == "ns-1"
    assert zc.namespace_source == "read from cluster cluster-1"
    zc.list_policies()
    zc.list_policies()
    assert listing.call_count == 2
    assert narrow.call_count == 1
    assert zc.calls[("GET", "/organizations/{org}/clusters")] == 0  # never lists all clusters


@pytest.mark.parametrize("status", [403, 404])
def test_namespace_falls_back_to_cluster_id_when_the_cluster_read_is_refused(
    rsps: responses.RequestsMock, zc: ZeroClient, status: int
) -> None:
    add_token(rsps)
    rsps.get(f"{ORG}/clusters/cluster-1", status=status, json={"error": "no"})
    assert zc.namespace_id() == "cluster-1"
    assert f"refused ({status})" in zc.namespace_source
    assert "cluster id is used" in zc.namespace_source


def test_cluster_without_namespace_is_permanent(
    rsps: responses.RequestsMock, zc: ZeroClient
) -> None:
    add_token(rsps)
    add_clusters(rsps, namespace=None)
    with pytest.raises(ZeroPermanentError, match="without a namespaceId"):
        zc.namespace_id()


def test_other_cluster_read_errors_are_not_papered_over(
    rsps: responses.RequestsMock, zc: ZeroClient
) -> None:
    add_token(rsps)
    rsps.get(f"{ORG}/clusters/cluster-1", status=400, json={"error": "bad"})
    with pytest.raises(ZeroPermanentError, match="returned 400"):
        zc.namespace_id()


def _serve_pages(
    rsps: responses.RequestsMock, url: str, items: list[dict[str, object]], cap: int
) -> None:
    """A server that sends at most ``cap`` items per page, whatever limit is asked."""

    def answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        query = dict(pair.split("=", 1) for pair in (request.url or "").split("?", 1)[1].split("&"))
        offset, limit = int(query.get("offset", 0)), int(query.get("limit", 1000))
        return 200, {}, json.dumps(items[offset : offset + min(cap, limit)])

    rsps.add_callback(responses.GET, url, callback=answer)


@pytest.mark.parametrize(
    ("total", "cap", "calls"),
    [(0, 100, 1), (99, 100, 2), (100, 100, 2), (250, 100, 3), (25, 10, 3), (20, 10, 3)],
)
def test_list_policies_pages_until_a_short_page_whatever_the_server_cap(
    rsps: responses.RequestsMock, zc: ZeroClient, total: int, cap: int, calls: int
) -> None:
    add_token(rsps)
    add_clusters(rsps)
    policies = [{"id": f"p{i:03}", "name": f"n{i:03}", "ppl": []} for i in range(total)]
    _serve_pages(rsps, f"{ORG}/policies", policies, cap)
    result = zc.list_policies()
    assert [p["id"] for p in result] == [p["id"] for p in policies]
    assert zc.calls[("GET", "/organizations/{org}/policies")] == calls


def test_list_policies_stops_when_server_ignores_offset(
    rsps: responses.RequestsMock, zc: ZeroClient
) -> None:
    add_token(rsps)
    add_clusters(rsps)
    page = [{"id": f"p{i}", "name": f"n{i}"} for i in range(100)]
    rsps.get(f"{ORG}/policies", json=page)
    assert len(zc.list_policies()) == 100
    assert zc.calls[("GET", "/organizations/{org}/policies")] == 2


def test_find_policies_by_name_returns_every_duplicate_and_reads_ppl_structures(
    rsps: responses.RequestsMock, zc: ZeroClient
) -> None:
    add_token(rsps)
    add_clusters(rsps)
    rsps.get(
        f"{ORG}/policies",
        json=[
            {"id": "1", "name": "object", "ppl": {"allow": {"and": [{"accept": True}]}}},
            {"id": "2", "name": "array", "ppl": [{"deny": {"and": [{"accept": True}]}}]},
            {"id": "3", "name": "dup", "ppl": {}},
            {"id": "4", "name": "dup", "ppl": []},
        ],
    )
    assert zc.find_policies_by_name("object")[0]["ppl"] == {"allow": {"and": [{"accept": True}]}}
    assert zc.find_policies_by_name("array")[0]["ppl"] == [{"deny": {"and": [{"accept": True}]}}]
    assert [p["id"] for p in zc.find_policies_by_name("dup")] == ["3", "4"]
    assert zc.find_policies_by_name("missing") == []


def test_create_policy_sends_ppl_as_a_structure_and_accepts_200_or_201(
    rsps: responses.RequestsMock, zc: ZeroClient
) -> None:
    add_token(rsps)
    add_clusters(rsps)
    ppl = [{"allow": {"and": [{"reject": True}]}}]
    expected = {
        "name": "jit",
        "description": "",
        "explanation": "",
        "remediation": "",
        "enforced": False,
        "namespaceId": "ns-1",
        "ppl": ppl,
    }
    for status in (201, 200):
        rsps.upsert(
            responses.POST,
            f"{ORG}/policies",
            status=status,
            json={"id": "p-1", **expected},
            match=[matchers.json_params_matcher(expected)],
        )
        created = zc.create_policy({"name": "jit", "ppl": ppl})
        assert created["id"] == "p-1"
        assert created["ppl"] == ppl


def test_ppl_text_is_refused_before_anything_is_sent(
    rsps: responses.RequestsMock, zc: ZeroClient
) -> None:
    with pytest.raises(TypeError, match="rule object or a list"):
        zc.create_policy({"name": "jit", "namespaceId": "ns-1", "ppl": "[]"})
    assert len(rsps.calls) == 0


def test_replace_policy_puts_all_properties(rsps: responses.RequestsMock, zc: ZeroClient) -> None:
    add_token(rsps)
    current = {
        "id": "p-1",
        "name": "jit",
        "description": "managed by jitportal",
        "explanation": "why",
        "remediation": "ask",
        "enforced": True,
        "namespaceId": "ns-1",
        "ppl": {"allow": {"and": [{"accept": True}]}},
        "createdAt": "2026-01-01T00:00:00Z",
        "routes": [],
    }
    put = rsps.put(f"{ORG}/policies/p-1", json={**current, "ppl": []})
    zc.replace_policy("p-1", current)
    body = json.loads(put.calls[0].request.body)
    assert body == {
        "name": "jit",
        "description": "managed by jitportal",
        "explanation": "why",
        "remediation": "ask",
        "enforced": True,
        "namespaceId": "ns-1",
        "ppl": {"allow": {"and": [{"accept": True}]}},
    }
    with pytest.raises(ValueError, match="ppl"):
        zc.replace_policy("p-1", {"name": "jit"})


def test_routes_changesets_and_activity_queries(
    rsps: responses.RequestsMock, zc: ZeroClient
) -> None:
    add_token(rsps)
    add_clusters(rsps)
    rsps.get(
        f"{ORG}/routes",
        json=[{"id": "r1", "policyIds": ["p-1"]}],
        match=[matchers.query_param_matcher({"namespaceId": "ns-1"}, strict_match=False)],
    )
    changeset = {"id": "cs-1", "namespaceId": "ns-1", "status": "pending"}
    rsps.get(
        f"{ORG}/changesets",
        json=[changeset],
        match=[
            matchers.query_param_matcher(
                {"clusterId": "cluster-1", "status": "pending"}, strict_match=False
            )
        ],
    )
    apply = rsps.post(f"{ORG}/changesets/cs-1/apply", json={**changeset, "status": "applying"})
    rsps.get(
        f"{ORG}/activityLogs",
        json=[{"id": "a1"}],
        match=[
            matchers.query_param_matcher(
                {"entityType": "policy", "entityId": "p-1", "limit": "5", "orderBy": "-updatedAt"}
            )
        ],
    )
    rsps.delete(f"{ORG}/policies/p-1", status=204)

    assert zc.list_routes() == [{"id": "r1", "policyIds": ["p-1"]}]
    assert zc.list_changesets(status="pending") == [changeset]
    assert zc.apply_changeset("cs-1")["status"] == "applying"
    assert apply.call_count == 1
    assert zc.activity_logs(entityType="policy", entityId="p-1", limit=5) == [{"id": "a1"}]
    assert zc.delete_policy("p-1") is None
    assert zc.calls[("POST", "/organizations/{org}/changesets/{id}/apply")] == 1


def test_find_changeset_pages_through_a_capped_listing(
    rsps: responses.RequestsMock, zc: ZeroClient
) -> None:
    add_token(rsps)
    changesets = [{"id": f"cs-{i}", "namespaceId": "ns-1", "status": "applied"} for i in range(23)]
    _serve_pages(rsps, f"{ORG}/changesets", changesets, cap=10)
    assert zc.find_changeset("cs-21") == changesets[21]
    assert zc.calls[("GET", "/organizations/{org}/changesets")] == 3
    assert zc.find_changeset("cs-missing") is None


def test_auto_apply_setting_is_cached_and_only_true_counts(
    rsps: responses.RequestsMock, zc: ZeroClient, clock: FakeClock
) -> None:
    add_token(rsps)
    read = rsps.get(SETTINGS_URL, json={"autoApplyChangesets": True})
    assert zc.auto_apply_changesets() is True
    clock.now += 10
    assert zc.auto_apply_changesets() is True
    assert read.call_count == 1
    clock.now += 30
    rsps.replace(responses.GET, SETTINGS_URL, json={"autoApplyChangesets": "true"})
    assert zc.auto_apply_changesets() is False  # a string is not the boolean true
    assert zc.calls[("GET", "/organizations/{org}/clusters/{cluster}/settings")] == 2


def test_path_segments_are_quoted(rsps: responses.RequestsMock, zc: ZeroClient) -> None:
    add_token(rsps)
    rsps.get(f"{ORG}/policies/a%2Fb", json={"id": "a/b", "ppl": []})
    assert zc.get_policy("a/b")["id"] == "a/b"


# ------------------------------------------------------------------ settings


def _django_settings_ready() -> bool:
    try:
        from django.conf import settings

        return bool(settings.INSTALLED_APPS)
    except Exception:
        return False


django_only = pytest.mark.skipif(
    not _django_settings_ready(), reason="Django settings are not importable here"
)


@django_only
def test_from_settings_and_process_wide_cache() -> None:
    from django.test import override_settings

    config = {
        "ZERO_API_URL": "https://zero.example/api/v0",
        "API_USER_TOKEN": "tok",
        "ORGANIZATION_ID": "org-9",
        "CLUSTER_ID": "cl-9",
        "ZERO_AUTH_SCHEME": "Pomerium",
        "ZERO_TIMEOUT_SECONDS": 3.5,
    }
    with override_settings(**config):
        client = ZeroClient.from_settings()
        assert (client.base_url, client.organization_id, client.cluster_id) == (
            "https://zero.example/api/v0",
            "org-9",
            "cl-9",
        )
        assert (client.auth_scheme, client.timeout) == ("Pomerium", 3.5)
        shared = get_client()
        assert get_client() is shared
    with override_settings(**{**config, "CLUSTER_ID": "cl-10"}):
        other = get_client()
        assert other is not shared
        assert other.cluster_id == "cl-10"
    reset_client_cache()
    with override_settings(**{**config, "CLUSTER_ID": "cl-10"}):
        assert get_client() is not other
