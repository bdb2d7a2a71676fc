"""The access reports tell auditors what Pomerium enforces: confirmed enforcement times
(issue 27 gap 8) and everyone the base rules let in, with every level's criteria (issue 25)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from apps.access import base_rules, reports, services
from apps.access.states import GrantState, SyncStatus
from tests.factories import AccessLevelFactory, GrantFactory, ResourceFactory, UserFactory

pytestmark = pytest.mark.django_db

M = timedelta(minutes=1)
T = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
SRE_RULE = {"allow": {"or": [{"groups": {"has": "sre"}}]}}
EVE_RULE = {"allow": {"and": [{"email": {"is": "eve@example.com"}}, {"source_ip": "10.0.0.0/8"}]}}


@pytest.fixture
def grafana() -> Any:
    resource = ResourceFactory(slug="grafana", name="Grafana", base_ppl=[SRE_RULE, EVE_RULE])
    AccessLevelFactory(
        resource=resource,
        slug="read",
        name="Read-only",
        rank=1,
        criteria=[{"http_method": {"in": ["GET", "HEAD"]}}],
    )
    return resource


def revoked(resource: Any, **enforcement: Any) -> Any:
    return GrantFactory(
        request__resource=resource,
        not_before=T,
        expires_at=T + 120 * M,
        live_at=T,
        state=GrantState.REVOKED,
        revoked_at=T + 10 * M,
        revoked_by=UserFactory(email="bob@example.com"),
        revoke_reason="done",
        **enforcement,
    )


def grant_rows(rows: list[reports.AccessRow]) -> list[reports.AccessRow]:
    return [row for row in rows if row.source == reports.GRANT]


def test_a_revocation_pomerium_has_not_confirmed_is_still_access_now(grafana):
    """Gap 8: during a Zero outage the revoked person is still let in, and listed."""
    grant = revoked(grafana, sync_status=SyncStatus.ERROR)

    (row,) = grant_rows(reports.who_has_access_now(grafana, now=T + 30 * M))

    assert (row.grant_id, row.access_from, row.access_until) == (grant.pk, T, None)
    assert "revocation not yet enforced" in row.enforcement
    assert row.revoked_by == "bob@example.com"
    # Confirmed gone at 10:40: listed no more, and it ended then, not at the click.
    grant.sync_status, grant.removed_at = SyncStatus.REMOVED, T + 40 * M
    grant.save()
    assert grant_rows(reports.who_has_access_now(grafana, now=T + 45 * M)) == []
    (had,) = reports.who_had_access(grafana, T + 20 * M, T + 30 * M)
    assert had.access_until == T + 40 * M


def test_who_had_access_ends_at_the_confirmed_removal_not_the_click(grafana):
    revoked(grafana, sync_status=SyncStatus.REMOVED, removed_at=T + 25 * M)

    assert len(reports.who_had_access(grafana, T + 20 * M, T + 21 * M)) == 1
    assert reports.who_had_access(grafana, T + 26 * M, T + 60 * M) == []


def test_the_rules_own_date_window_closes_it_without_a_confirmation(grafana):
    revoked(grafana, sync_status=SyncStatus.PENDING)

    (row,) = reports.who_had_access(grafana, T, T + 200 * M, now=T + 300 * M)

    assert row.access_until == T + 120 * M  # Pomerium's date criterion ended it
    assert grant_rows(reports.who_has_access_now(grafana, now=T + 300 * M)) == []


def test_the_now_report_lists_base_rule_access_and_level_criteria(grafana):
    """Bob reaches Grafana every day through the sre base rule: the report names him."""
    UserFactory(email="bob@example.com", groups=["sre"])
    UserFactory(email="dave@example.com", groups=["engineering"])

    rows = reports.who_has_access_now(grafana, now=T)

    base = [(r.email, r.group, r.state, r.criteria) for r in rows if r.source == "base rule"]
    assert base == [
        ("", "sre", "base rule (allow)", ""),
        ("bob@example.com", "sre", "base rule (allow)", ""),
        ("eve@example.com", "", "base rule (allow)", '[{"source_ip":"10.0.0.0/8"}]'),
    ]
    group_row = next(r for r in rows if r.group == "sre" and not r.email)
    assert "whoever the identity provider puts in it" in group_row.enforcement
    assert group_row.criteria_from == "base rule 1 of grafana"
    (level,) = [r for r in rows if r.source == "level"]
    assert level.criteria == '[{"http_method": {"in": ["GET", "HEAD"]}}]'
    assert level.criteria_from == "level read (Read-only) of grafana"


def test_a_grants_criteria_say_where_they_come_from(grafana):
    alice = UserFactory(email="alice@example.com")
    bob = UserFactory(email="bob@example.com", groups=["approvers"])
    read = grafana.levels.get()
    req = services.submit_request(
        requester=alice,
        resource=grafana,
        duration_minutes=60,
        justification="Checking a dashboard",
        level=read,
        now=T,
    )
    services.approve_request(req, approver=bob, now=T)

    (row,) = grant_rows(reports.who_has_access_now(grafana, now=T + M))

    assert row.criteria == '[{"http_method": {"in": ["GET", "HEAD"]}}]'
    assert row.criteria_from == "level read, as approved"
    assert "Pomerium never confirmed the rule" in row.enforcement  # no sync in this test


def test_through_the_admin_page_the_api_and_the_csv(auditor, grafana):
    UserFactory(email="bob@example.com", groups=["sre"])

    page = auditor.post("/admin/access/grant/access-now/", {"resource": "grafana"})
    api = auditor.get("/api/v1/reports/access-now", {"resource": "grafana"}).json()
    download = auditor.post(
        "/admin/access/grant/access-now/", {"resource": "grafana", "download": "csv"}
    )

    html = page.content.decode()
    assert "group <strong>sre</strong>" in html and "bob@example.com" in html
    assert {(r["email"], r["group"], r["source"]) for r in api["rows"]} >= {
        ("", "sre", "base rule"),
        ("bob@example.com", "sre", "base rule"),
    }
    lines = list(csv.DictReader(io.StringIO(download.content.decode(), newline="")))
    assert {"access_from_utc", "access_until_utc"} <= set(lines[0])
    assert any(line["email"] == "bob@example.com" for line in lines)


def test_an_approver_of_another_resource_sees_no_base_rules_of_this_one(signed_in, grafana):
    from apps.access.models import Grant, Resource

    _, ann = signed_in("ann", groups=["other-approvers"])
    rows = reports.who_has_access_now(
        None,
        now=T,
        among=Grant.objects.restrict(ann),
        resources=Resource.objects.restrict(ann),
    )
    assert rows == []


# --- Base rules in words -------------------------------------------------------------------


def test_base_rules_in_words():
    found = base_rules.subjects(
        [
            {"allow": {"or": [{"groups": {"has": "sre"}}, {"domain": {"is": "corp.example"}}]}},
            {"allow": {"and": [{"email": {"ends_with": "@sre.example.com"}}]}},
            {"allow": {"and": [{"authenticated_user": True}, {"http_method": "GET"}]}},
            {"deny": {"or": [{"email": "mallory@example.com"}]}},
            {"allow": {"not": [{"groups": {"has": "contractors"}}]}},
            {"allow": {"and": [{"email": {"in": ["a@x.io", "b@x.io"]}}, {"groups": {"has": "x"}}]}},
        ]
    )

    assert [(s.action, s.kind, s.value, s.conditions_text, s.rule) for s in found] == [
        ("allow", "group", "sre", "", 1),
        ("allow", "domain", "corp.example", "", 1),
        ("allow", "pattern", 'ends_with "@sre.example.com"', "", 2),
        ("allow", "everyone signed in", "", '[{"http_method":"GET"}]', 3),
        ("deny", "person", "mallory@example.com", "", 4),
        ("allow", "rule", '{"not":[{"groups":{"has":"contractors"}}]}', "", 5),
        (
            "allow",
            "rule",
            '{"and":[{"email":{"in":["a@x.io","b@x.io"]}},{"groups":{"has":"x"}}]}',
            "",
            6,
        ),
    ]
