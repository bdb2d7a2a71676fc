"""The requester pages tell the truth: the request form outside a window, required fields,
the level offered first, outcomes, and the status endpoints the pages poll."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from apps.access import services
from apps.access.models import AccessRequest
from apps.access.states import GrantState, RequestState, SyncStatus
from apps.accounts.models import User
from tests.access.test_views import post_data
from tests.factories import AccessLevelFactory, AccessRequestFactory, GrantFactory, ResourceFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("standby_approver")]

WEEKDAYS = {"days": "mon-fri", "after": "09:00", "before": "17:00", "timezone": "Europe/Berlin"}
SUNDAY_EVENING = datetime(2026, 3, 1, 20, 13, tzinfo=UTC)  # 21:13 in Berlin


def scheduled_grant(user: Any, resource: Any, start: datetime) -> Any:
    """A one-hour grant from ``start``, its rule already confirmed in Pomerium."""
    return GrantFactory(
        request__requester=user,
        request__resource=resource,
        state=GrantState.SCHEDULED,
        not_before=start,
        expires_at=start + timedelta(hours=1),
        sync_status=SyncStatus.LIVE,
        live_at=timezone.now(),
    )


@pytest.fixture
def alice(signed_in: Any) -> Any:
    return signed_in("alice", groups=["engineering"])


@pytest.fixture
def prod() -> Any:
    return ResourceFactory(
        slug="prod-db", name="Prod DB console", duration_choices=[60, 120], schedule=WEEKDAYS
    )


def test_now_outside_the_window_is_refused_and_the_next_opening_is_offered(alice, prod):
    client, user = alice
    User.objects.filter(pk=user.pk).update(time_zone="America/New_York")

    with time_machine.travel(SUNDAY_EVENING, tick=False):
        refused = client.post("/requests/new", post_data(resource="prod-db", duration="120"))
        html = refused.content.decode()
        assert refused.status_code == 200 and not AccessRequest.objects.exists()
        assert (
            "Prod DB console is open only Mon-Fri 09:00-17:00 (Europe/Berlin), and no window is "
            "open now. Its next window opens Mon 2 Mar 2026 03:00 EST." in html
        )
        # The offer: "At a chosen time" with the opening filled in, in her zone, shown.
        assert re.search(r'<input type="radio" name="start" value="later"[^>]* checked>', html)
        assert 'value="2026-03-02T03:00"' in html
        assert '<p id="start-at">' in html

        again = client.post(
            "/requests/new",
            post_data(
                resource="prod-db", duration="120", start="later", start_at="2026-03-02T03:00"
            ),
        )

    assert again.status_code == 302
    req = AccessRequest.objects.get()
    assert req.start_at == datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def test_now_inside_the_window_is_taken(alice, prod):
    client, _ = alice
    with time_machine.travel(datetime(2026, 3, 2, 10, 0, tzinfo=UTC), tick=False):
        response = client.post("/requests/new", post_data(resource="prod-db"))
    assert response.status_code == 302
    assert AccessRequest.objects.get().start_at is None


def test_required_fields_are_marked_and_start_at_shows_only_when_chosen(alice):
    client, _ = alice
    ResourceFactory(slug="grafana", name="Grafana", ticket_required=True)

    html = client.get("/requests/new?resource=grafana").content.decode()

    assert 'data-required-for="ticket">(required)</span>' in html
    assert 'data-required-for="justification">(required)</span>' in html  # required by default
    assert '<p id="start-at" class="hidden">' in html


def test_the_lowest_level_approved_at_once_is_offered_first(alice):
    client, _ = alice
    grafana = ResourceFactory(slug="grafana", name="Grafana", duration_choices=[60, 240])
    AccessLevelFactory(resource=grafana, slug="read", name="Read", rank=1)
    AccessLevelFactory(
        resource=grafana,
        slug="edit",
        name="Edit",
        rank=2,
        auto_approve_rules=[{"group": "engineering", "max_minutes": 60}],
    )
    AccessLevelFactory(resource=grafana, slug="admin", name="Admin", rank=3)

    html = client.get("/requests/new?resource=grafana").content.decode()

    assert '<option value="edit" selected>Edit (approved at once for you)</option>' in html
    assert '<option value="read">Read</option>' in html


def test_the_notice_about_a_grant_that_has_not_started_says_when_it_opens(alice):
    client, user = alice
    grafana = ResourceFactory(slug="grafana", name="Grafana")
    start = timezone.now() + timedelta(days=1)
    scheduled_grant(user, grafana, start)

    html = client.get("/requests/new").content.decode()

    assert "You already hold a grant for\n  <strong>Grafana</strong> (Opens " in html
    assert "You already have access" not in html


def test_a_revoked_request_shows_its_outcome_and_the_level_asked(alice, signed_in):
    client, user = alice
    _, bob = signed_in("bob", groups=["approvers"])
    grafana = ResourceFactory(slug="grafana", name="Grafana")
    read = AccessLevelFactory(resource=grafana, slug="read", name="Read-only", rank=1)
    grant = GrantFactory(request__requester=user, request__resource=grafana, level=read)
    AccessRequest.objects.filter(pk=grant.request_id).update(level=read)
    services.revoke_grant(grant, actor=bob, reason="done")

    html = client.get(f"/requests/{grant.request_id}").content.decode()
    dashboard = client.get("/").content.decode()

    assert "Approved → revoked by bob@example.com at " in html
    assert "<dt>Level</dt><dd>Read-only" in html
    assert "0 of 1" not in html and "Approved → revoked by bob@example.com" in dashboard


# --- The status endpoints the pages poll -------------------------------------------------


def test_the_request_status_says_pending_until_decided(alice, signed_in):
    client, user = alice
    grafana = ResourceFactory(slug="grafana", name="Grafana")
    req = AccessRequestFactory(requester=user, resource=grafana)
    page = client.get(f"/requests/{req.pk}")

    pending = client.get(f"/requests/{req.pk}/status").json()

    assert pending["pending"] is True and pending["poll_seconds"] == 3
    assert pending["requests"] == [
        {"id": req.pk, "state": "pending", "outcome": "Waiting for approval"}
    ]
    assert pending["grants"] == []
    assert f'data-digest="{pending["digest"]}"' in page.content.decode()

    _, bob = signed_in("bob", groups=["approvers"])
    services.approve_request(req, approver=bob)
    approved = client.get(f"/requests/{req.pk}/status").json()

    assert approved["digest"] != pending["digest"]
    assert approved["grants"][0]["access"]["state"] == "waiting"  # no sync in this test
    assert approved["pending"] is True  # still waiting for Pomerium


def test_nothing_pending_stops_the_polling(alice):
    client, user = alice
    grafana = ResourceFactory(slug="grafana", name="Grafana")
    now = timezone.now()
    GrantFactory(
        request__requester=user,
        request__resource=grafana,
        not_before=now - timedelta(minutes=5),
        expires_at=now + timedelta(days=2),
        sync_status=SyncStatus.LIVE,
        live_at=now - timedelta(minutes=5),
    )

    state = client.get("/status").json()
    html = client.get("/").content.decode()

    assert state["pending"] is False and state["next_change"] is None
    assert state["grants"][0]["access"]["state"] == "allowed"
    assert 'data-pending="false"' in html and f'data-digest="{state["digest"]}"' in html


def test_a_grant_opening_soon_gets_one_look_then(alice):
    client, user = alice
    grafana = ResourceFactory(slug="grafana", name="Grafana")
    start = (timezone.now() + timedelta(hours=2)).replace(microsecond=0)
    scheduled_grant(user, grafana, start)

    state = client.get("/status").json()

    assert state["pending"] is False
    assert state["next_change"] == start.astimezone(UTC).isoformat().replace("+00:00", "Z")


def test_the_status_of_someone_elses_request_is_404(alice, signed_in):
    client, _ = alice
    _, dave = signed_in("dave", groups=["engineering"])
    req = AccessRequestFactory(requester=dave, resource=ResourceFactory(approver_groups=["x"]))

    assert client.get(f"/requests/{req.pk}/status").status_code == 404
    assert AccessRequest.objects.get(pk=req.pk).state == RequestState.PENDING
