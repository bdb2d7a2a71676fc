"""apps.access.errors at its edges: an outage noticed anywhere is a 503 (HTML or the API's
JSON) with Retry-After and one log line; the 403 sentence says who grants a role however
the portal is configured."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied
from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponseServerError
from django.test import RequestFactory

from apps.access.errors import (
    RETRY_AFTER_SECONDS,
    UNAVAILABLE,
    ErrorAnswersMiddleware,
    explain,
    who_grants,
)
from apps.accounts import roles

SECRET_DSN = "connection to server at 10.1.2.3 failed\nDETAIL: password=hunter2"


def failing_view(exc: Exception) -> Any:
    """A view whose database call raised ``exc`` and that Django's handler turned into a
    500, announcing it through ``got_request_exception`` as Django does."""

    def view(request: HttpRequest) -> HttpResponse:
        try:
            raise exc
        except Exception:
            got_request_exception.send(sender=None, request=request)
        return HttpResponseServerError("Django's 500")

    return view


def test_an_outage_deep_in_a_page_is_answered_503_with_one_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    request = RequestFactory().get("/requests/7")
    request.request_id = "req-42"  # type: ignore[attr-defined]
    middleware = ErrorAnswersMiddleware(failing_view(OperationalError(SECRET_DSN)))

    with caplog.at_level(logging.ERROR, logger="apps.access.errors"):
        response = middleware(request)

    assert response.status_code == 503
    assert response["Retry-After"] == str(RETRY_AFTER_SECONDS)
    html = response.content.decode()
    assert UNAVAILABLE in html and "req-42" in html
    assert "hunter2" not in html
    [record] = [r for r in caplog.records if r.name == "apps.access.errors"]
    message = record.getMessage()
    assert message == (
        "database unavailable: answered 503 to GET /requests/7 "
        "(OperationalError: connection to server at 10.1.2.3 failed)"
    )
    assert record.exc_info is None and "hunter2" not in message


def test_an_api_outage_is_the_apis_json_error() -> None:
    request = RequestFactory().post("/api/v1/requests")
    middleware = ErrorAnswersMiddleware(failing_view(InterfaceError("")))

    response = middleware(request)

    assert response.status_code == 503
    assert response["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert json.loads(response.content) == {
        "error": {"code": "unavailable", "message": UNAVAILABLE}
    }


def test_a_bug_that_is_not_an_outage_stays_a_500() -> None:
    request = RequestFactory().get("/requests/7")
    middleware = ErrorAnswersMiddleware(failing_view(KeyError("bug")))

    assert middleware(request).status_code == 500


def test_process_exception_answers_outages_and_leaves_the_api_its_own_refusals() -> None:
    middleware = ErrorAnswersMiddleware(lambda request: HttpResponse())
    factory = RequestFactory()

    outage = middleware.process_exception(factory.get("/"), OperationalError("down"))
    assert outage is not None and outage.status_code == 503
    assert middleware.process_exception(factory.get("/api/v1/levels"), PermissionDenied()) is None
    assert middleware.process_exception(factory.get("/"), ValueError("bug")) is None


@pytest.mark.parametrize(
    ("groups", "emails", "expected"),
    [
        (
            ["sre", "dba"],
            ["boss@example.com"],
            "People are approvers when their identity provider puts them in the group dba, "
            "sre: whoever manages those groups there grants it; the portal's administrators "
            "can also name people in its settings. The portal reads your groups each time "
            "you sign in.",
        ),
        (
            ["sre"],
            [],
            "People are approvers when their identity provider puts them in the group sre: "
            "whoever manages that group there grants it. The portal reads your groups each "
            "time you sign in.",
        ),
        (
            [],
            ["boss@example.com"],
            "The portal's administrators name its approvers in its settings.",
        ),
        ([], [], "This portal has no approvers configured; its administrators set them."),
    ],
)
def test_who_grants_the_approver_role_follows_the_settings(
    settings: Any, groups: list[str], emails: list[str], expected: str
) -> None:
    settings.PORTAL_APPROVER_GROUPS = groups
    settings.PORTAL_APPROVER_EMAILS = emails
    assert who_grants(roles.APPROVER) == expected


def test_a_refusal_with_its_own_message_is_shown_as_it_is() -> None:
    request = RequestFactory().get("/")
    assert explain(request, PermissionDenied("  Only the requester may cancel it.  ")) == (
        "Only the requester may cancel it."
    )
