"""CSRF by design: JSON-only writes, no CORS preflight, cross-site refused; JSON errors only.

A browser with a Pomerium session gets an assertion added to any request it sends, so
these tests send a valid assertion with every forged request: only the guard stops them.
"""

from __future__ import annotations

import json

import pytest

from apps.access.models import AccessRequest
from apps.accounts.actions import AccountAction
from apps.audit.models import AuditAction, AuditEvent
from tests.api.conftest import error

# Requests need somebody able to approve them (a request nobody could approve is refused).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("standby_approver")]

BODY = {"resource": "grafana-admin", "duration_minutes": 60, "justification": "a good reason"}


@pytest.mark.parametrize(
    "content_type",
    ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/plain"],
)
def test_a_write_a_cross_site_form_could_send_is_refused(alice, grafana, content_type):
    response = alice.client.post("/api/v1/requests", json.dumps(BODY), content_type=content_type)

    assert (response.status_code, error(response)["code"]) == (415, "unsupported_media_type")
    assert AccessRequest.objects.count() == 0


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
def test_a_write_the_browser_marks_cross_site_is_refused(alice, grafana, site):
    response = alice.post("/requests", BODY, HTTP_SEC_FETCH_SITE=site)

    assert (response.status_code, error(response)["code"]) == (403, "cross_site")
    assert AccessRequest.objects.count() == 0


@pytest.mark.parametrize("origin", ["https://evil.example", "null", "http://portal.test.evil"])
def test_a_foreign_origin_is_refused(alice, grafana, origin):
    response = alice.post("/requests", BODY, HTTP_ORIGIN=origin)

    assert (response.status_code, error(response)["code"]) == (403, "cross_site")
    assert AccessRequest.objects.count() == 0


def test_cross_site_reads_are_refused_too(carol, db):
    response = carol.client.get("/api/v1/audit/export", HTTP_SEC_FETCH_SITE="cross-site")

    assert response.status_code == 403
    assert not AuditEvent.objects.filter(action=AuditAction.AUDIT_EXPORTED).exists()


def test_same_origin_and_cli_requests_pass(alice, grafana):
    same = alice.post(
        "/requests", BODY, HTTP_SEC_FETCH_SITE="same-origin", HTTP_ORIGIN="http://testserver"
    )

    assert same.status_code == 201
    assert AccessRequest.objects.count() == 1


def test_no_cors_preflight_is_ever_granted(alice, grafana):
    response = alice.client.options(
        "/api/v1/requests",
        HTTP_ORIGIN="https://evil.example",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type",
    )

    assert (response.status_code, error(response)["code"]) == (403, "cors_refused")
    assert not [h for h in response.headers if h.lower().startswith("access-control-")]


def test_a_refused_request_signs_nobody_in(client, grafana, assertion_for):
    from apps.accounts.models import User

    client.post(
        "/api/v1/requests",
        "x=1",
        content_type="text/plain",
        HTTP_X_POMERIUM_JWT_ASSERTION=assertion_for("idp|new", "new@example.com"),
    )

    assert not User.objects.filter(username="idp|new").exists()


def test_missing_assertion_is_a_json_403(client, db):
    response = client.get("/api/v1/resources")

    assert (response.status_code, error(response)["code"]) == (403, "not_signed_in")
    assert "jit login" in error(response)["message"]
    assert AuditEvent.objects.filter(action=AccountAction.ASSERTION_REJECTED).count() == 1


@pytest.mark.parametrize(
    ("path", "status"),
    [("/api/v1/nope", 404), ("/api/elsewhere", 404), ("/api/v1/requests/abc", 400)],
)
def test_unknown_paths_are_json_errors(alice, db, path, status):
    response = alice.client.get(path)

    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert error(response)["code"] in ("not_found", "validation_error")


def test_malformed_json_is_a_400(alice, grafana):
    response = alice.client.post("/api/v1/requests", "{not json", content_type="application/json")

    assert (response.status_code, error(response)["code"]) == (400, "validation_error")
    assert AccessRequest.objects.count() == 0


def test_wrong_method_is_a_json_405(alice, db):
    response = alice.client.delete("/api/v1/resources", "{}", content_type="application/json")

    assert (response.status_code, error(response)["code"]) == (405, "method_not_allowed")


def test_api_answers_are_not_cached(alice, db):
    response = alice.get("/resources")
    assert response["Cache-Control"] == "private, no-store"  # one policy, pages and API alike
    assert alice.get("/nope")["Cache-Control"] == "private, no-store"  # errors too
