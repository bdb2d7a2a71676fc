"""Every grant the API returns says whether its holder can get in now (``access``), and every
request what became of it (``outcome``): the words of the pages, in the reader's zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from apps.access.states import GrantState, SyncStatus
from apps.accounts.models import User
from tests.factories import GrantFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("standby_approver")]

WEEKDAYS = {"days": "mon-fri", "after": "09:00", "before": "17:00", "timezone": "Europe/Berlin"}
SUNDAY_EVENING = datetime(2026, 3, 1, 20, 13, tzinfo=UTC)  # 21:13 in Berlin


def test_a_grant_outside_its_weekly_window_opens_monday_in_every_grant_answer(alice, grafana):
    """Gap 13: Pomerium denies a Mon-Fri grant on Sunday; the API must not call it live."""
    me = alice.user()
    User.objects.filter(pk=me.pk).update(time_zone="Europe/Berlin")
    grant = GrantFactory(
        request__requester=me,
        request__resource=grafana,
        schedule=WEEKDAYS,
        not_before=SUNDAY_EVENING,
        expires_at=SUNDAY_EVENING + timedelta(days=1),
        sync_status=SyncStatus.LIVE,
        live_at=SUNDAY_EVENING,
    )
    expected = {
        "state": "opens",
        "label": "Opens Mon 09:00 CET",
        "until": None,
        "opens_at": "2026-03-02T08:00:00Z",
        "detail": None,
    }

    with time_machine.travel(SUNDAY_EVENING + timedelta(minutes=1), tick=False):
        listed = alice.get("/grants").json()
        one = alice.get(f"/grants/{grant.pk}").json()
        req = alice.get(f"/requests/{grant.request_id}").json()

    assert listed[0]["access"] == expected
    assert one["access"] == expected
    assert req["grant"]["access"] == expected
    assert "live_in_pomerium" not in one


def test_inside_the_window_it_is_allowed_until_the_window_closes(alice, grafana):
    me = alice.user()
    monday_noon = datetime(2026, 3, 2, 11, 0, tzinfo=UTC)
    GrantFactory(
        request__requester=me,
        request__resource=grafana,
        schedule=WEEKDAYS,
        not_before=monday_noon - timedelta(hours=1),
        expires_at=monday_noon + timedelta(days=1),
        sync_status=SyncStatus.LIVE,
        live_at=monday_noon - timedelta(hours=1),
    )

    with time_machine.travel(monday_noon, tick=False):
        access = alice.get("/grants").json()[0]["access"]

    # No preference and no browser cookie: UTC, and it says so.
    assert access["state"] == "allowed"
    assert access["label"] == "Allowed now, until 16:00 UTC"
    assert access["until"] == "2026-03-02T16:00:00Z"


def test_a_revoked_request_says_who_revoked_it_and_when(alice, bob, grafana):
    me = alice.user()
    grant = GrantFactory(request__requester=me, request__resource=grafana)

    revoked = bob.post(f"/grants/{grant.pk}/revoke", {"reason": "done with it"})
    req = alice.get(f"/requests/{grant.request_id}").json()

    assert revoked.status_code == 200, revoked.content
    assert revoked.json()["access"]["state"] == "ended"
    assert req["outcome"].startswith("Approved → revoked by bob@example.com at ")
    assert req["outcome"].endswith(" UTC")
    assert req["grant"]["access"]["detail"].startswith("Revoked by bob@example.com at ")


def test_an_auto_approved_request_says_so_not_0_of_1(alice, grafana):
    grafana.auto_approve_rules = [{"group": "engineering", "max_minutes": 60}]
    grafana.save()

    body = alice.post(
        "/requests",
        {"resource": "grafana-admin", "duration_minutes": 30, "justification": "check a panel"},
    ).json()

    assert (body["state"], body["outcome"]) == ("approved", "Auto-approved")
    assert body["grant"]["access"]["state"] == "waiting"  # no sync ran in this test
    assert body["grant"]["access"]["detail"] == (
        "The rule is written; Pomerium has not confirmed it yet."
    )


def test_a_pending_request_counts_its_approvals(alice, grafana):
    body = alice.post(
        "/requests",
        {"resource": "grafana-admin", "duration_minutes": 30, "justification": "check a panel"},
    ).json()

    assert body["outcome"] == "Waiting for approval"
    assert body["grant"] is None


def test_an_ended_grant_is_ended(alice, grafana):
    grant = GrantFactory(
        request__requester=alice.user(),
        request__resource=grafana,
        state=GrantState.EXPIRED,
        not_before=datetime(2026, 1, 1, tzinfo=UTC),
        expires_at=datetime(2026, 1, 1, 1, tzinfo=UTC),
        sync_status=SyncStatus.REMOVED,
    )

    with time_machine.travel(datetime(2026, 1, 20, tzinfo=UTC), tick=False):
        access = alice.get(f"/grants/{grant.pk}").json()["access"]

    assert (access["state"], access["label"]) == ("ended", "Ended")
    assert access["detail"] == "Expired at Thu 1 Jan 01:00 UTC."


def test_the_openapi_document_describes_access_and_outcome(alice):
    document = alice.client.get("/api/v1/openapi.json").json()
    schemas = document["components"]["schemas"]

    assert schemas["AccessOut"]["properties"]["state"]["enum"] == [
        "allowed",
        "opens",
        "waiting",
        "error",
        "ended",
    ]
    assert "access" in schemas["GrantOut"]["required"]
    assert "outcome" in schemas["RequestOut"]["required"]
