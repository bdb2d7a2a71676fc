"""The OpenAPI document is valid, served, and the API answers no input with a 500.

The fuzz run lets schemathesis generate requests from the document itself (valid and
invalid ones) and sends them through the whole middleware stack with a real assertion,
as a requester, an approver and an auditor, against a database holding real objects.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from openapi_spec_validator import validate
from schemathesis import GenerationMode

from apps.access.models import Grant
from apps.api.endpoints import api
from tests.factories import AccessRequestFactory, GrantFactory, ResourceFactory, UserFactory
from tests.support.jwks import claims_for, mint

pytestmark = pytest.mark.django_db


def test_the_document_is_served_and_valid_openapi(client, assertion_for):
    response = client.get(
        "/api/v1/openapi.json",
        HTTP_X_POMERIUM_JWT_ASSERTION=assertion_for("idp|x", "x@example.com"),
    )

    document = response.json()
    validate(document)
    assert document["openapi"].startswith("3.")
    assert {"/api/v1/requests", "/api/v1/pending", "/api/v1/audit/export"} <= set(document["paths"])
    assert "201" in document["paths"]["/api/v1/requests"]["post"]["responses"]


PEOPLE = {
    "requester": ("idp|fuzz-alice", "alice@example.com", ["engineering"]),
    "approver": ("idp|fuzz-bob", "bob@example.com", ["approvers"]),
    "auditor": ("idp|fuzz-carol", "carol@example.com", ["compliance"]),
}


@pytest.fixture
def world(db: Any) -> None:
    """Objects with low ids, so generated ids hit real rows as well as missing ones."""
    grafana = ResourceFactory(slug="grafana-admin", approver_groups=["approvers"])
    alice = UserFactory(username="idp|fuzz-alice", email="alice@example.com")
    AccessRequestFactory(requester=alice, resource=grafana)
    GrantFactory(request__requester=alice, request__resource=ResourceFactory(slug="db"))
    assert Grant.objects.count() == 1


@pytest.fixture
def wsgi_app() -> Iterator[WSGIHandler]:
    """Django's WSGI handler, keeping the test's database connection open between calls.

    A real request closes the connection when it ends; inside a test transaction that would
    end the test's own connection, so (as Django's test client does) that is switched off.
    """
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.mark.slow
@pytest.mark.parametrize("who", sorted(PEOPLE))
def test_fuzzing_every_operation_finds_no_server_error(world, wsgi_app, signing_key, who):
    schema = schemathesis.openapi.from_dict(api.get_openapi_schema())
    app = wsgi_app
    sub, email, groups = PEOPLE[who]
    failures: list[str] = []

    for result in schema.get_all_operations():
        operation = result.ok()
        strategy = operation.as_strategy() | operation.as_strategy(
            generation_mode=GenerationMode.NEGATIVE
        )

        @settings(
            max_examples=25,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def run(case: Any) -> None:
            token = mint(signing_key, claims_for(sub, email, groups=groups))
            response = case.call(app=app, headers={"X-Pomerium-Jwt-Assertion": token})
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path}: {response.status_code}")
            elif response.status_code >= 400:
                assert response.headers["content-type"][0].startswith("application/json")
                assert set(response.json()) == {"error"}

        run()

    assert failures == []


WRITES = {"post", "put", "patch", "delete"}


def test_every_write_declares_the_415_it_can_return(client, assertion_for):
    # Issue 27, gap 15: the middleware refuses a write that is not application/json (415);
    # the document must say so on every write.
    document = client.get(
        "/api/v1/openapi.json",
        HTTP_X_POMERIUM_JWT_ASSERTION=assertion_for("idp|x", "x@example.com"),
    ).json()
    writes = [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in WRITES
    ]
    assert len(writes) == 8  # every POST of endpoints.py
    for path, method, operation in writes:
        declared = operation["responses"].get("415")
        assert declared is not None, f"{method.upper()} {path}"
        schema = declared["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorOut"}, f"{method.upper()} {path}"


@pytest.mark.parametrize(
    ("path", "ids"),
    [
        ("/api/v1/requests", {}),
        ("/api/v1/requests/{request_id}/approve", {"request_id": 1}),
        ("/api/v1/grants/{grant_id}/end", {"grant_id": 1}),
    ],
)
def test_a_415_conforms_to_the_document(world, wsgi_app, signing_key, path, ids):
    # What schemathesis checks: the answer's status is declared and its body matches.
    schema = schemathesis.openapi.from_dict(api.get_openapi_schema())
    operation = schema[path]["POST"]
    case = operation.Case(path_parameters=ids, body="resource=grafana", media_type="text/plain")
    token = mint(signing_key, claims_for("idp|fuzz-alice", "alice@example.com"))
    response = case.call(app=wsgi_app, headers={"X-Pomerium-Jwt-Assertion": token})
    assert response.status_code == 415
    case.validate_response(response)
