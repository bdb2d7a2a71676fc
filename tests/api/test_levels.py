"""The API carries access levels and schedules: listing, filing, lowering, upgrading."""

from __future__ import annotations

import pytest

from apps.access.models import Grant, Resource
from apps.audit.models import AuditAction, AuditEvent
from tests.api.conftest import error
from tests.factories import AccessLevelFactory

pytestmark = pytest.mark.django_db

REASON = "Debugging the alerting pipeline"
READ_ONLY = [{"http_method": {"in": ["GET", "HEAD", "OPTIONS"]}}]
BERLIN = {"days": "mon-fri", "after": "09:00", "before": "17:00", "timezone": "Europe/Berlin"}


@pytest.fixture
def leveled(grafana: Resource) -> Resource:
    AccessLevelFactory(
        resource=grafana,
        slug="read-only",
        name="Read-only",
        rank=1,
        criteria=READ_ONLY,
        max_duration_minutes=240,
    )
    AccessLevelFactory(resource=grafana, slug="full", name="Full", rank=2, approvals_required=1)
    grafana.schedule = BERLIN
    grafana.save()
    return grafana


def test_resources_list_levels_and_schedule(alice, leveled):
    (body,) = alice.get("/resources").json()
    assert body["levels"] == [
        {
            "slug": "read-only",
            "name": "Read-only",
            "rank": 1,
            "criteria": READ_ONLY,
            "max_duration_minutes": 240,
            "approvals_required": 1,
        },
        {
            "slug": "full",
            "name": "Full",
            "rank": 2,
            "criteria": [],
            "max_duration_minutes": 480,
            "approvals_required": 1,
        },
    ]
    assert body["schedule"] == {**BERLIN, "text": "Mon-Fri 09:00-17:00 (Europe/Berlin)"}


def test_filing_needs_a_known_level_and_none_asks_for_the_highest(alice, leveled):
    unknown = alice.post(
        "/requests",
        {
            "resource": leveled.slug,
            "level": "root",
            "duration_minutes": 60,
            "justification": REASON,
        },
    )
    assert unknown.status_code == 422
    assert "no access level 'root'" in error(unknown)["message"]
    assert not AuditEvent.objects.filter(action=AuditAction.REQUEST_SUBMITTED).exists()
    filed = alice.post(
        "/requests", {"resource": leveled.slug, "duration_minutes": 60, "justification": REASON}
    )
    assert filed.status_code == 201 and filed.json()["level"] == "full"


def test_the_approver_lowers_and_the_requester_upgrades(alice, bob, leveled):
    filed = alice.post(
        "/requests",
        {
            "resource": leveled.slug,
            "level": "full",
            "duration_minutes": 60,
            "justification": REASON,
        },
    ).json()
    assert (filed["level"], filed["approved_level"]) == ("full", None)

    approved = bob.post(f"/requests/{filed['id']}/approve", {"level": "read-only"}).json()

    assert approved["request"]["approved_level"] == "read-only"
    assert approved["grant"]["level"] == "read-only"
    assert approved["grant"]["schedule"] == BERLIN
    assert approved["grant"]["criteria"][0] == READ_ONLY[0]
    raised = bob.post(f"/requests/{filed['id']}/approve", {"level": "full"})
    assert raised.status_code in (409, 422)

    upgrade = alice.post(
        f"/grants/{approved['grant']['id']}/extension-requests",
        {"level": "full", "duration_minutes": 60, "justification": REASON},
    ).json()
    assert upgrade["kind"] == "extension" and upgrade["level"] == "full"
    bob.post(f"/requests/{upgrade['id']}/approve", {})
    grant = Grant.objects.get()
    assert grant.level.slug == "full"
    assert grant.criteria == [
        {"day_of_week": "mon-fri"},
        {"time_of_day": {"timezone": "Europe/Berlin", "after": "09:00", "before": "17:00"}},
    ]
