"""Access reports: window overlap with expiry, revocation and break-glass; admin views."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from apps.access import reports
from apps.access.actions import AccessAction
from apps.access.models import Approval, Grant, Resource
from apps.access.states import GrantState, RequestKind, SyncStatus
from apps.audit.models import AuditEvent
from tests.factories import GrantFactory, ResourceFactory, UserFactory

# Requests need somebody able to approve them (a request nobody could approve is refused).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("standby_approver")]

H = timedelta(hours=1)
M = timedelta(minutes=1)
T = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
NOW = T + H + 40 * M  # 11:40


CONFIRMED = timedelta(seconds=20)  # how long Pomerium took to confirm a change


def grant(resource: Resource, start: datetime, end: datetime, state: str, **kw: Any) -> Grant:
    """A grant with that window, enforced as the sync records it: confirmed live at its
    start, and (once ended) its removal confirmed ``CONFIRMED`` after its revocation or end.
    ``request__x=...`` set fields of its request; ``sync_status=...`` etc. override."""
    ended = kw.get("revoked_at") or (end if state == GrantState.EXPIRED else None)
    enforcement: dict[str, Any] = {"sync_status": SyncStatus.LIVE, "live_at": start}
    if ended is not None:
        enforcement = {
            "sync_status": SyncStatus.REMOVED,
            "live_at": min(start, ended),
            "removed_at": ended + CONFIRMED,
        }
    return GrantFactory(
        resource=resource,
        request__resource=resource,
        not_before=start,
        expires_at=end,
        state=state,
        created_at=start,
        **{**enforcement, **kw},
    )


@pytest.fixture
def bob() -> Any:
    return UserFactory(email="bob@example.com")


@pytest.fixture
def db_res() -> Resource:
    return ResourceFactory(slug="prod-db", name="Production DB")


@pytest.fixture
def grants(db_res: Resource, bob: Any) -> dict[str, Grant]:
    other = ResourceFactory(slug="web")
    g = {
        "A": grant(db_res, T, T + H, GrantState.EXPIRED, request__decided_by=bob),
        "B": grant(
            db_res,
            T + 30 * M,
            T + 2 * H,
            GrantState.REVOKED,
            revoked_at=T + 45 * M,
            revoked_by=bob,
            revoke_reason="done early",
        ),
        "C": grant(db_res, T + 3 * H, T + 4 * H, GrantState.REVOKED, revoked_at=T + 2 * H),
        "D": grant(db_res, T - H, T, GrantState.EXPIRED),
        "E": grant(other, T, T + H, GrantState.EXPIRED),
        "F": grant(
            db_res,
            T + 90 * M,
            T + 150 * M,
            GrantState.ACTIVE,
            is_break_glass=True,
            request__kind=RequestKind.BREAK_GLASS,
            request__justification="=prod down",
        ),
        "H": grant(
            db_res,
            T + 110 * M,
            T + 170 * M,
            GrantState.SCHEDULED,
            request__auto_approved_rule={"group": "oncall", "max_minutes": 60},
        ),
        "I": grant(db_res, T, T + 90 * M, GrantState.ACTIVE),  # expiry task not run yet
    }
    return g


def names(rows: list[reports.AccessRow], grants: dict[str, Grant]) -> str:
    by_pk = {g.pk: name for name, g in grants.items()}
    return "".join(by_pk[row.grant_id] for row in rows if row.grant_id is not None)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (T, T + 40 * M, "AIB"),  # D ended exactly at T: half-open windows
        (T + 50 * M, T + H, "AI"),  # B's revocation was enforced at 10:45:20
        (T - H, T, "D"),
        (T + 119 * M, T + 210 * M, "FH"),  # C was revoked before it started
        (T + 5 * H, T + 6 * H, ""),
    ],
)
def test_who_had_access_overlap(
    db_res: Resource, grants: dict[str, Grant], start: datetime, end: datetime, expected: str
) -> None:
    assert names(reports.who_had_access(db_res, start, end), grants) == expected


def test_all_resources_and_an_instant(db_res: Resource, grants: dict[str, Grant]) -> None:
    assert names(reports.who_had_access(None, T, T + M), grants) == "AEI"
    assert names(reports.who_had_access_at(db_res, T), grants) == "AI"
    # B was revoked at 10:45; Pomerium confirmed the removal 20 s later: B was still in.
    assert names(reports.who_had_access_at(db_res, T + 45 * M), grants) == "AIB"
    assert names(reports.who_had_access_at(db_res, T + 46 * M), grants) == "AI"
    with pytest.raises(ValueError, match="later than its start"):
        reports.who_had_access(db_res, T, T)


def test_who_has_access_now(db_res: Resource, grants: dict[str, Grant]) -> None:
    assert names(reports.who_has_access_now(db_res, now=NOW), grants) == "F"
    # At 10:10 A, E and I were all enforced (A and E expired later, at 11:00).
    assert names(reports.who_has_access_now(None, now=T + 10 * M), grants) == "AEI"


def test_row_content_and_csv(db_res: Resource, grants: dict[str, Grant], bob: Any) -> None:
    alice = UserFactory(email="alice@example.com")
    Approval.objects.create(request=grants["A"].request, approver=alice, created_at=T)
    rows = {row.grant_id: row for row in reports.who_had_access(db_res, T - H, T + 3 * H)}
    a, b, f, h = (rows[grants[k].pk] for k in "ABFH")
    assert a.approved_by == "alice@example.com, bob@example.com"
    assert (a.access_from, a.access_until) == (T, T + H)
    assert (b.access_until, b.revoked_by, b.revoke_reason) == (
        T + 45 * M + CONFIRMED,  # the confirmed removal, not the click
        "bob@example.com",
        "done early",
    )
    assert (f.break_glass, f.approved_by) == (True, "break-glass (self)")
    assert h.approved_by == "auto-approved (oncall)"
    text = reports.to_csv([f])
    (row,) = csv.DictReader(io.StringIO(text, newline=""))
    assert tuple(row) == reports.CSV_HEADER  # the times' columns say UTC
    assert row == row | {
        "resource": "prod-db",
        "email": grants["F"].email,
        "access_from_utc": "2026-11-01T11:30:00.000000+00:00",
        "access_until_utc": "2026-11-01T12:30:00.000000+00:00",
        "break_glass": "yes",
        "justification": "'=prod down",
        "request_id": str(grants["F"].request_id),
    }


def test_report_query_count_does_not_grow(
    db_res: Resource, grants: dict[str, Grant], django_assert_max_num_queries: Any
) -> None:
    with django_assert_max_num_queries(4):
        assert len(reports.who_had_access(None, T - H, T + 5 * H)) == 7


class TestAdminViews:
    URL = "/admin/access/grant/access-report/"
    NOW_URL = "/admin/access/grant/access-now/"

    def viewed(self) -> list[AuditEvent]:
        return list(AuditEvent.objects.filter(action=AccessAction.REPORT_VIEWED))

    def test_who_had_access_is_shown_and_audited(
        self, auditor: Any, db_res: Resource, grants: dict[str, Grant]
    ) -> None:
        response = auditor.post(
            self.URL,
            {"resource": "prod-db", "start": "2026-11-01T10:00Z", "end": "2026-11-01T10:40Z"},
        )
        assert response.status_code == 200
        assert names(response.context["rows"], grants) == "AIB"
        (event,) = self.viewed()
        assert event.actor_label == "carol@example.com"
        assert event.resource_slug == "prod-db"
        assert event.details == {
            "report": "who_had_access",
            "resource": "prod-db",
            "start": "2026-11-01T10:00:00.000000+00:00",
            "end": "2026-11-01T10:40:00.000000+00:00",
            "rows": 3,
            "format": "html",
            "via": "admin",
        }

    def test_csv_download(self, superuser: Any, db_res: Resource, grants: dict[str, Grant]) -> None:
        response = superuser.post(
            self.URL,
            {"resource": "prod-db", "start": "2026-11-01", "end": "2026-11-01", "download": "csv"},
        )
        assert response["Content-Disposition"] == (
            'attachment; filename="access_prod-db_2026-11-01_to_2026-11-01.csv"'
        )
        lines = response.content.decode().splitlines()
        assert lines[0] == ",".join(reports.CSV_HEADER)
        assert len(lines) == 1 + 6  # prod-db's grants that gave access that day: not C
        assert [e.details["format"] for e in self.viewed()] == ["csv"]

    def test_who_has_access_now(self, auditor: Any, db_res: Resource) -> None:
        live = grant(db_res, datetime.now(UTC) - H, datetime.now(UTC) + H, GrantState.ACTIVE)
        response = auditor.post(self.NOW_URL, {"resource": ""})
        assert [row.grant_id for row in response.context["rows"]] == [live.pk]
        assert [e.details["report"] for e in self.viewed()] == ["who_has_access_now"]

    def test_the_empty_form_and_bad_input_are_not_audited(self, auditor: Any, db_res: Any) -> None:
        assert auditor.get(self.URL).status_code == 200
        response = auditor.post(self.URL, {"resource": "prod-db", "start": "soon", "end": ""})
        assert response.status_code == 400
        assert set(response.context["form"].errors) == {"start", "end"}
        assert self.viewed() == []

    def test_a_get_only_shows_the_form(self, auditor: Any, db_res: Resource, grants: Any) -> None:
        # A link (or an <img>) cannot run or download a report in an auditor's name.
        for url in (self.URL, self.NOW_URL):
            response = auditor.get(
                url,
                {
                    "resource": "prod-db",
                    "start": "2026-11-01",
                    "end": "2026-11-02",
                    "download": "csv",
                },
            )
            assert response.status_code == 200
            assert response.context["rows"] is None
            assert "Content-Disposition" not in response
            assert '<form method="post">' in response.content.decode()
        assert self.viewed() == []

    def test_linked_from_the_grants_list_and_the_audit_list(
        self, auditor: Any, approver: Any
    ) -> None:
        for page in ("/admin/access/grant/", "/admin/audit/auditevent/"):
            html = auditor.get(page).content.decode()
            assert f'href="{self.URL}"' in html and f'href="{self.NOW_URL}"' in html
        response = approver.get("/admin/access/grant/")
        assert response.status_code == 200
        assert self.URL not in response.content.decode()  # no link to what they may not see
        assert self.viewed() == []

    def test_approver_gets_403(self, approver: Any, db_res: Any) -> None:
        assert approver.get(self.NOW_URL).status_code == 403
        assert approver.get(self.URL, {"resource": "prod-db"}).status_code == 403
        assert approver.post(self.NOW_URL, {"resource": ""}).status_code == 403
        assert self.viewed() == []
