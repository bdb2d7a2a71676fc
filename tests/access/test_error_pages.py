"""Routine refusals are clear pages and one log line; the demo's 404 is the portal's page."""

from __future__ import annotations

import logging
import sys
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied
from django.db import OperationalError

from apps.access.error_log import QuietRoutineErrors

pytestmark = pytest.mark.django_db


def test_a_non_auditor_is_told_which_role_the_export_needs_and_who_grants_it(
    plain_user: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="django.request"):
        response = plain_user.get("/audit/export")

    html = response.content.decode()
    assert response.status_code == 403
    assert "Exporting the audit trail is for auditors." in html
    assert "when their identity provider puts them in the group compliance" in html
    # One line, no traceback.
    records = [r for r in caplog.records if r.name == "django.request"]
    assert [r.getMessage() for r in records] == ["Forbidden: /audit/export"]
    assert records[0].exc_info is None


def test_an_approver_on_the_reports_is_told_they_are_for_auditors(approver: Any) -> None:
    approver.get("/")  # signed in, with the approver role from the group
    response = approver.get("/admin/access/grant/access-now/")

    html = response.content.decode()
    assert response.status_code == 403
    assert "Reading the access reports is for auditors." in html


def test_a_bare_refusal_names_the_persons_roles_and_who_grants_the_others(approver: Any) -> None:
    response = approver.get("/admin/audit/auditevent/")

    html = response.content.decode()
    assert response.status_code == 403
    assert "This page needs a portal role you do not hold (yours: approver)." in html
    assert "in the group compliance" in html


def test_the_log_filter_keeps_one_line_for_a_refusal_and_none_for_an_outage() -> None:
    quiet = QuietRoutineErrors()

    def record(name: str, exc: BaseException) -> logging.LogRecord:
        try:
            raise exc
        except type(exc):
            info = sys.exc_info()
        return logging.LogRecord(name, logging.WARNING, __file__, 1, "x", (), info)

    refusal = record("django.request", PermissionDenied())
    assert quiet.filter(refusal) and refusal.exc_info is None
    assert not quiet.filter(record("django.request", OperationalError("refused")))
    task = record("apps.pomerium.tasks", OperationalError("refused"))
    assert quiet.filter(task) and task.exc_info is not None  # a worker keeps its traceback


def test_the_demos_404_is_the_portals_page(plain_user: Any, settings: Any) -> None:
    settings.DEBUG = True

    unknown = plain_user.get("/no/such/page")
    hidden = plain_user.get("/requests/999999")

    for response in (unknown, hidden):
        html = response.content.decode()
        assert response.status_code == 404
        assert "There is nothing here, or nothing you may see." in html
        assert "URLconf" not in html and "admin/" not in html
