"""/audit/export and the admin's Export links: who may, what streams, what is audited."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from django.http import StreamingHttpResponse

from apps.access.actions import AccessAction
from apps.audit import chain
from apps.audit.models import AuditAction, AuditEvent
from tests.conftest import PomeriumClient
from tests.support.jwks import SigningKey

from .conftest import T0, add_entry

pytestmark = pytest.mark.django_db

EXPORT = "/audit/export"
ADMIN_EXPORT = "/admin/audit/auditevent/export/"


def body(response: Any) -> str:
    assert isinstance(response, StreamingHttpResponse)
    return b"".join(response.streaming_content).decode("utf-8")


def exports() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=AuditAction.AUDIT_EXPORTED).order_by("seq"))


@pytest.fixture
def trail() -> dict[str, AuditEvent]:
    return {
        "revoked": add_entry(
            AccessAction.GRANT_REVOKED,
            at=T0,
            actor_label="alice@example.com",
            resource_slug="db",
            details={"reason": '=HYPERLINK("x")'},
        ),
        "glass": add_entry(
            AccessAction.GRANT_BREAK_GLASS,
            at=T0 + timedelta(days=5),
            actor_label="zoë@example.com",
            resource_slug="db",
            details={"justification": "Zoë 🚀 prod down"},
        ),
        "later": add_entry(
            AccessAction.GRANT_REVOKED,
            at=T0 + timedelta(days=40),
            actor_label="alice@example.com",
            resource_slug="web",
        ),
    }


def admin_export(client: Any, params: dict[str, str]) -> Any:
    """The admin export as a browser sends it: filters in the query, format in the POST."""
    query = {k: v for k, v in params.items() if k != "format"}
    return client.post(
        f"{ADMIN_EXPORT}?{urlencode(query)}", {"format": params.get("format", "csv")}
    )


def test_the_form_page_exports_nothing(auditor: Any, trail: Any) -> None:
    response = auditor.get(EXPORT)
    assert response.status_code == 200
    assert b"Export the audit trail" in response.content
    assert exports() == []


def test_a_get_never_downloads_even_with_every_parameter(auditor: Any, trail: Any) -> None:
    # A link or <img src> in someone else's page must not export in the auditor's name.
    response = auditor.get(EXPORT, {"format": "jsonl", "action": "grant.break_glass"})
    assert response.status_code == 200
    assert not isinstance(response, StreamingHttpResponse)
    html = response.content.decode()
    assert '<form method="post"' in html and 'name="csrfmiddlewaretoken"' in html
    assert exports() == []


def test_the_export_post_needs_the_csrf_token(signing_key: SigningKey, trail: Any) -> None:
    identity = {"sub": "idp|carol", "email": "carol@example.com", "groups": ["compliance"]}
    client = PomeriumClient(signing_key, identity, enforce_csrf_checks=True)
    assert client.get("/").status_code == 200
    response = client.post(EXPORT, {"format": "csv"})
    assert response.status_code == 403
    assert exports() == []


def test_csv_download_streams_the_filtered_range_and_is_audited_first(
    auditor: Any, trail: dict[str, AuditEvent]
) -> None:
    response = auditor.post(
        EXPORT, {"since": "2026-11-01", "until": "2026-11-23", "resource": "db", "format": "csv"}
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        'attachment; filename="audit_2026-11-01_to_2026-11-23.csv"'
    )
    # The export is on record before a single byte was streamed.
    (event,) = exports()
    assert event.actor_label == "carol@example.com"
    assert event.details == {
        "format": "csv",
        "filters": {
            "since": "2026-11-01T00:00:00.000000+00:00",
            "until": "2026-11-24T00:00:00.000000+00:00",
            "actor": None,
            "resource": "db",
            "action": None,
        },
        "via": "web",
    }
    assert event.request_id and event.assertion_jti  # who and from where
    text = body(response)
    rows = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"), newline="")))
    assert [r["seq"] for r in rows] == [str(trail["revoked"].seq), str(trail["glass"].seq)]
    assert json.loads(rows[0]["details"]) == {
        "reason": '=HYPERLINK("x")'
    }  # JSON cell starts with {
    assert rows[1]["actor_label"] == "zoë@example.com"
    assert "Zoë 🚀 prod down" in rows[1]["details"]
    assert rows[1]["action"] == "grant.break_glass"


def test_jsonl_download_of_everything_verifies_and_ends_with_its_own_record(
    auditor: Any, trail: dict[str, AuditEvent]
) -> None:
    response = auditor.post(EXPORT, {"format": "jsonl"})
    assert response["Content-Type"] == "application/x-ndjson; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="audit_start_to_')
    lines = [json.loads(line) for line in body(response).splitlines()]
    assert len(lines) == AuditEvent.objects.count()
    assert lines[-1]["action"] == "audit.exported"
    assert chain.verify(lines).ok


def test_injection_is_neutralised_in_csv_only(auditor: Any) -> None:
    add_entry(at=T0, actor_label="=cmd|'/c calc'!a0", details={})
    csv_text = body(auditor.post(EXPORT, {"actor": "=cmd|'/c calc'!a0", "format": "csv"}))
    row = next(csv.DictReader(io.StringIO(csv_text.removeprefix("\ufeff"), newline="")))
    assert row["actor_label"] == "'=cmd|'/c calc'!a0"
    jsonl = body(auditor.post(EXPORT, {"actor": "=cmd|'/c calc'!a0", "format": "jsonl"}))
    assert json.loads(jsonl)["actor_label"] == "=cmd|'/c calc'!a0"


def test_superuser_may_export(superuser: Any, trail: Any) -> None:
    response = superuser.post(EXPORT, {"action": "grant.break_glass", "format": "jsonl"})
    lines = [json.loads(line) for line in body(response).splitlines()]
    assert [line["seq"] for line in lines] == [trail["glass"].seq]
    assert [e.actor_label for e in exports()] == ["root@example.com"]


@pytest.mark.parametrize("who", ["approver", "plain_user"])
def test_others_get_403_and_nothing_is_exported(who: str, request: Any, trail: Any) -> None:
    client = request.getfixturevalue(who)
    client.get("/")  # signs in (writes user.created), so the count below is stable
    before = AuditEvent.objects.count()
    for params in ({}, {"format": "csv"}, {"format": "jsonl"}):
        for send in (client.get, client.post):
            response = send(EXPORT, params)
            assert response.status_code == 403
            assert b"You may not do that" in response.content
    assert AuditEvent.objects.count() == before
    assert exports() == []


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"since": "last tuesday"}, "since", "is not an ISO 8601 date"),
        ({"since": "2026-11-10", "until": "2026-11-01"}, "until", "Must be later than From"),
        ({"action": "grant.bogus"}, "action", "Select a valid choice"),
        ({"resource": "no slug!"}, "resource", "valid"),
        ({"format": "xlsx"}, "format", "Select a valid choice"),
    ],
)
def test_bad_input_shows_form_errors(
    auditor: Any, params: dict[str, str], field: str, message: str
) -> None:
    response = auditor.post(EXPORT, {"format": "csv", **params})
    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors[field])
    assert exports() == []


class TestAdmin:
    def test_changelist_is_view_only_with_export_links(self, auditor: Any, trail: Any) -> None:
        response = auditor.get("/admin/audit/auditevent/?action__exact=grant.revoked")
        assert response.status_code == 200
        cl = response.context["cl"]
        assert set(cl.queryset.values_list("action", flat=True)) == {"grant.revoked"}
        assert cl.model_admin.get_actions(response.wsgi_request) == {}  # no delete_selected
        html = response.content.decode()
        assert f"{ADMIN_EXPORT}?action__exact=grant.revoked&amp;format=csv" in html
        assert "/admin/audit/auditevent/add/" not in html

    def test_no_add_change_or_delete(self, superuser: Any, trail: dict[str, AuditEvent]) -> None:
        pk = trail["revoked"].pk
        assert superuser.get("/admin/audit/auditevent/add/").status_code == 403
        assert superuser.get(f"/admin/audit/auditevent/{pk}/delete/").status_code == 403
        page = superuser.get(f"/admin/audit/auditevent/{pk}/change/")
        assert page.status_code == 200 and b'name="_save"' not in page.content
        response = superuser.post(f"/admin/audit/auditevent/{pk}/change/", {"actor_label": "x"})
        assert response.status_code == 403
        response = superuser.post(
            "/admin/audit/auditevent/", {"action": "delete_selected", "_selected_action": [pk]}
        )
        assert AuditEvent.objects.get(pk=pk).actor_label == "alice@example.com"

    def test_export_honours_changelist_filters_and_search(
        self, auditor: Any, trail: dict[str, AuditEvent]
    ) -> None:
        response = admin_export(
            auditor, {"action__exact": "grant.revoked", "q": "alice", "format": "jsonl"}
        )
        lines = [json.loads(line) for line in body(response).splitlines()]
        assert [line["seq"] for line in lines] == [trail["revoked"].seq, trail["later"].seq]
        (event,) = exports()
        assert event.details == {
            "format": "jsonl",
            "filters": {"action__exact": "grant.revoked", "q": "alice"},
            "via": "admin",
        }
        assert event.actor_label == "carol@example.com"

    def test_export_of_a_date_filter_names_the_range(self, auditor: Any, trail: Any) -> None:
        response = admin_export(
            auditor,
            {
                "created_at__gte": "2026-11-01 00:00:00+00:00",
                "created_at__lt": "2026-11-08 00:00:00+00:00",
                "format": "csv",
            },
        )
        assert response["Content-Disposition"] == (
            'attachment; filename="audit_2026-11-01_to_2026-11-07.csv"'
        )
        assert body(response).count("\r\n") == 3  # header + revoked + glass

    def test_bad_filters_export_nothing(self, auditor: Any, trail: Any) -> None:
        response = admin_export(auditor, {"bogus__lookup": "1", "format": "csv"})
        assert response.status_code == 302
        response = admin_export(auditor, {"format": "xlsx"})
        assert response.status_code == 302
        assert exports() == []

    def test_the_export_link_only_shows_a_confirmation_form(self, auditor: Any, trail: Any) -> None:
        response = auditor.get(ADMIN_EXPORT, {"action__exact": "grant.revoked", "format": "csv"})
        assert response.status_code == 200
        assert not isinstance(response, StreamingHttpResponse)
        html = response.content.decode()
        action = f'<form method="post" action="{ADMIN_EXPORT}?action__exact=grant.revoked'
        assert action in html
        assert "<code>action__exact</code> = grant.revoked" in html
        assert exports() == []

    def test_approver_gets_403(self, approver: Any, trail: Any) -> None:
        assert approver.get(ADMIN_EXPORT, {"format": "csv"}).status_code == 403
        assert admin_export(approver, {"format": "csv"}).status_code == 403
        assert approver.get("/admin/audit/auditevent/").status_code == 403
        assert exports() == []
