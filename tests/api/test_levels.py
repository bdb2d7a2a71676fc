"""The API carries access levels and schedules: listing, filing, lowering, upgrading."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import time_machine

from apps.access.actions import AccessAction
from apps.access.models import AccessRequest, Grant, Resource
from apps.audit.models import AuditEvent
from tests.api.conftest import error
from tests.factories import AccessLevelFactory

# Requests need somebody able to approve them (a request nobody could approve is refused).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("standby_approver")]

REASON = "Debugging the alerting pipeline"
READ_ONLY = [{"http_method": {"in": ["GET", "HEAD", "OPTIONS"]}}]
BERLIN = {"days": "mon-fri", "after": "09:00", "before": "17:00", "timezone": "Europe/Berlin"}


# Tuesday 3 March 2026, 10:00 in Berlin: inside the resource's weekly window.
TUESDAY_MORNING = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
SUNDAY_EVENING = datetime(2026, 3, 1, 20, 13, tzinfo=UTC)


@pytest.fixture(autouse=True)
def inside_the_window() -> Iterator[None]:
    """Requests for "now" are taken only while the weekly window is open."""
    with time_machine.travel(TUESDAY_MORNING, tick=True):
        yield


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
    assert not AuditEvent.objects.filter(action=AccessAction.REQUEST_SUBMITTED).exists()
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


def test_a_request_for_now_outside_the_window_is_refused_naming_the_next_one(alice, leveled):
    """Never accepted silently as active: the answer names the next window, to start then."""
    with time_machine.travel(SUNDAY_EVENING, tick=False):
        refused = alice.post(
            "/requests",
            {"resource": leveled.slug, "duration_minutes": 60, "justification": REASON},
        )
        later = alice.post(
            "/requests",
            {
                "resource": leveled.slug,
                "duration_minutes": 60,
                "justification": REASON,
                "start_at": "2026-03-02T08:00:00Z",
            },
        )

    assert refused.status_code == 422
    assert error(refused) == {
        "code": "policy_violation",
        "message": "Grafana admin is open only Mon-Fri 09:00-17:00 (Europe/Berlin), and no "
        "window is open now. The next window opens Mon 2 Mar 2026 09:00 CET. Ask to start "
        "then (2026-03-02T08:00:00Z).",
        "fields": {"start_at": "2026-03-02T08:00:00Z"},
    }
    assert later.status_code == 201 and later.json()["start_at"] == "2026-03-02T08:00:00Z"
    assert AccessRequest.objects.count() == 1
