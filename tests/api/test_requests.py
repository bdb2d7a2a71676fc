"""Requester endpoints: the same services and audit entries as the pages, channel "api"."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.access.actions import AccessAction
from apps.access.models import AccessRequest, Grant
from apps.access.states import GrantState, RequestKind, RequestState
from apps.audit.models import AuditEvent
from tests.api.conftest import error
from tests.factories import GrantFactory, ResourceFactory

# Requests need somebody able to approve them (a request nobody could approve is refused).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("standby_approver")]

REASON = "Debugging the alerting pipeline"


def test_resources_lists_what_i_may_request_with_rules_and_flags(alice, grafana):
    ResourceFactory(slug="secret", requester_groups=["sre"])
    ResourceFactory(slug="archived", is_active=False)

    body = alice.get("/resources").json()

    assert [r["slug"] for r in body] == ["grafana-admin"]
    assert body[0] == {
        "slug": "grafana-admin",
        "name": "Grafana admin",
        "description": "",
        "durations_minutes": [30, 60, 240],
        "max_duration_minutes": 480,
        "justification_required": True,
        "justification_min_length": 10,
        "ticket_required": False,
        "allow_scheduled": True,
        "max_schedule_ahead_days": 30,
        "approvals_required": 1,
        "break_glass_allowed": False,
        "break_glass_max_minutes": 60,
        "open_grant_id": None,
        "levels": [],
        "schedule": None,
    }


def test_create_files_a_pending_request_audited_like_the_form(alice, grafana):
    response = alice.post(
        "/requests",
        {"resource": "grafana-admin", "duration_minutes": 60, "justification": REASON},
    )

    assert response.status_code == 201
    body = response.json()
    req = AccessRequest.objects.get()
    assert (body["id"], body["state"], body["kind"]) == (req.pk, "pending", "new")
    assert (req.requester.email, req.duration_minutes, req.justification) == (
        "alice@example.com",
        60,
        REASON,
    )
    assert body["created_at"].endswith("Z") and body["grant"] is None
    event = AuditEvent.objects.get(action=AccessAction.REQUEST_SUBMITTED)
    assert event.actor_label == "alice@example.com"
    assert event.details == {
        "requester": "alice@example.com",
        "resource": "grafana-admin",
        "kind": "new",
        "duration_minutes": 60,
        "start_at": None,
        "justification": REASON,
        "ticket": "",
        "channel": "api",
    }


def test_the_page_twin_records_channel_web(as_user, grafana):
    client = as_user("idp|alice", "alice@example.com", groups=["engineering"])

    client.post(
        "/requests/new",
        {"resource": "grafana-admin", "duration": 60, "justification": REASON, "start": "now"},
    )

    event = AuditEvent.objects.get(action=AccessAction.REQUEST_SUBMITTED)
    assert event.details["channel"] == "web"


def test_scheduled_start_is_rfc3339_in_and_utc_out(alice, grafana):
    start = (timezone.now() + timedelta(days=1)).replace(microsecond=0)
    local = start.astimezone(timezone.get_fixed_timezone(120)).isoformat()

    body = alice.post(
        "/requests",
        {
            "resource": "grafana-admin",
            "duration_minutes": 60,
            "justification": REASON,
            "start_at": local,
        },
    ).json()

    assert AccessRequest.objects.get().start_at == start
    assert body["start_at"] == start.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_start_without_zone_is_a_400_and_files_nothing(alice, grafana):
    response = alice.post(
        "/requests",
        {
            "resource": "grafana-admin",
            "duration_minutes": 60,
            "justification": REASON,
            "start_at": "2030-01-01T10:00:00",
        },
    )

    assert response.status_code == 400
    assert error(response)["code"] == "validation_error"
    assert "start_at" in error(response)["fields"]
    assert AccessRequest.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (
            {"resource": "grafana-admin", "duration_minutes": 45, "justification": REASON},
            422,
            "policy_violation",
        ),
        (
            {"resource": "grafana-admin", "duration_minutes": 60, "justification": "short"},
            422,
            "policy_violation",
        ),
        ({"resource": "nope", "duration_minutes": 60, "justification": REASON}, 404, "not_found"),
        ({"resource": "grafana-admin", "duration_minutes": "x"}, 400, "validation_error"),
        (
            {"resource": "grafana-admin", "duration_minutes": 60, "justification": "a\x00b" * 5},
            400,
            "validation_error",
        ),
        # PostgreSQL refuses NUL in a query's text: the lookup itself must never see one.
        (
            {"resource": "graf\x00", "duration_minutes": 60, "justification": REASON},
            400,
            "validation_error",
        ),
        (
            {
                "resource": "grafana-admin",
                "level": "\x00",
                "duration_minutes": 60,
                "justification": REASON,
            },
            400,
            "validation_error",
        ),
    ],
)
def test_bad_requests_get_the_right_status_and_change_nothing(alice, grafana, body, status, code):
    response = alice.post("/requests", body)

    assert (response.status_code, error(response)["code"]) == (status, code)
    assert AccessRequest.objects.count() == 0
    assert not AuditEvent.objects.filter(action=AccessAction.REQUEST_SUBMITTED).exists()


def test_a_duration_not_offered_names_the_ones_that_are(alice, grafana):
    body = {"resource": "grafana-admin", "duration_minutes": 45, "justification": REASON}

    response = alice.post("/requests", body)

    assert error(response)["message"] == (
        "Choose one of the durations offered for Grafana admin: 30 minutes, 1 hour, 4 hours."
    )


def test_resource_i_may_not_request_is_403(alice):
    ResourceFactory(slug="secret", requester_groups=["sre"])

    response = alice.post(
        "/requests", {"resource": "secret", "duration_minutes": 60, "justification": REASON}
    )

    assert (response.status_code, error(response)["code"]) == (403, "not_allowed")
    assert AccessRequest.objects.count() == 0


def test_a_second_pending_request_is_a_409(alice, grafana):
    body = {"resource": "grafana-admin", "duration_minutes": 60, "justification": REASON}
    alice.post("/requests", body)

    response = alice.post("/requests", body)

    assert (response.status_code, error(response)["code"]) == (409, "conflict")
    assert AccessRequest.objects.count() == 1


def test_idempotency_key_makes_a_retry_return_the_same_request(alice, grafana):
    body = {"resource": "grafana-admin", "duration_minutes": 60, "justification": REASON}

    first = alice.post("/requests", body, HTTP_IDEMPOTENCY_KEY="k-1")
    second = alice.post("/requests", body, HTTP_IDEMPOTENCY_KEY="k-1")

    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["id"] == second.json()["id"]
    assert second["Idempotent-Replayed"] == "true"
    assert AccessRequest.objects.count() == 1
    assert AuditEvent.objects.filter(action=AccessAction.REQUEST_SUBMITTED).count() == 1


def test_a_reused_key_with_another_body_is_a_422(alice, grafana):
    alice.post(
        "/requests",
        {"resource": "grafana-admin", "duration_minutes": 60, "justification": REASON},
        HTTP_IDEMPOTENCY_KEY="k-1",
    )

    response = alice.post(
        "/requests",
        {"resource": "grafana-admin", "duration_minutes": 30, "justification": REASON},
        HTTP_IDEMPOTENCY_KEY="k-1",
    )

    assert (response.status_code, error(response)["code"]) == (422, "idempotency_key_reused")
    assert list(AccessRequest.objects.values_list("duration_minutes", flat=True)) == [60]


def test_keys_are_scoped_to_the_person(alice, api_as, grafana):
    dave = api_as("dave", groups=["engineering"])
    body = {"resource": "grafana-admin", "duration_minutes": 60, "justification": REASON}

    a = alice.post("/requests", body, HTTP_IDEMPOTENCY_KEY="same").json()
    d = dave.post("/requests", body, HTTP_IDEMPOTENCY_KEY="same").json()

    assert a["id"] != d["id"]
    assert sorted(AccessRequest.objects.values_list("requester__email", flat=True)) == [
        "alice@example.com",
        "dave@example.com",
    ]


def test_a_failed_first_attempt_stores_no_key(alice, grafana):
    bad = {"resource": "grafana-admin", "duration_minutes": 45, "justification": REASON}
    assert alice.post("/requests", bad, HTTP_IDEMPOTENCY_KEY="k").status_code == 422

    good = alice.post(
        "/requests",
        {"resource": "grafana-admin", "duration_minutes": 60, "justification": REASON},
        HTTP_IDEMPOTENCY_KEY="k",
    )

    assert good.status_code == 201
    assert AccessRequest.objects.count() == 1


def test_my_requests_and_one_by_id_and_someone_elses_is_404(alice, api_as, grafana):
    body = {"resource": "grafana-admin", "duration_minutes": 60, "justification": REASON}
    mine = alice.post("/requests", body).json()
    dave = api_as("dave", groups=["engineering"])
    theirs = dave.post("/requests", body).json()

    listed = alice.get("/requests").json()
    one = alice.get(f"/requests/{mine['id']}")
    hidden = alice.get(f"/requests/{theirs['id']}")

    assert [r["id"] for r in listed] == [mine["id"]]
    assert one.json()["id"] == mine["id"]
    assert (hidden.status_code, error(hidden)["code"]) == (404, "not_found")
    assert alice.get("/requests/999999").status_code == 404


def test_cancel_is_audited_and_a_second_cancel_is_409(alice, grafana):
    body = {"resource": "grafana-admin", "duration_minutes": 60, "justification": REASON}
    req = alice.post("/requests", body).json()

    done = alice.post(f"/requests/{req['id']}/cancel")
    again = alice.post(f"/requests/{req['id']}/cancel")

    assert done.json()["state"] == "cancelled"
    assert AccessRequest.objects.get().state == RequestState.CANCELLED
    assert (again.status_code, error(again)["code"]) == (409, "illegal_transition")
    event = AuditEvent.objects.get(action=AccessAction.REQUEST_CANCELLED)
    assert event.details == {"requester": "alice@example.com", "channel": "api"}


def test_end_my_access_revokes_with_the_pages_reason(alice, grafana):
    grant = GrantFactory(request__requester=alice.user(), request__resource=grafana)

    body = alice.post(f"/grants/{grant.pk}/end").json()

    grant.refresh_from_db()
    assert (body["state"], grant.state) == ("revoked", GrantState.REVOKED)
    event = AuditEvent.objects.get(action=AccessAction.GRANT_REVOKED)
    assert event.details["reason"] == "ended early by the user"
    assert event.details["channel"] == "api"


def test_someone_elses_grant_cannot_be_ended(alice, api_as, grafana):
    dave = api_as("dave", groups=["engineering"])
    grant = GrantFactory(request__requester=dave.user(), request__resource=grafana)

    response = alice.post(f"/grants/{grant.pk}/end")

    assert response.status_code == 404
    assert Grant.objects.get().state == GrantState.ACTIVE


def test_asking_for_an_extension_files_an_extension_request(alice, grafana):
    grant = GrantFactory(request__requester=alice.user(), request__resource=grafana)

    response = alice.post(
        f"/grants/{grant.pk}/extension-requests", {"duration_minutes": 30, "justification": REASON}
    )

    assert response.status_code == 201
    req = AccessRequest.objects.get(state=RequestState.PENDING)
    assert (req.kind, req.extends_grant_id) == (RequestKind.EXTENSION, grant.pk)
    assert response.json()["grant"]["id"] == grant.pk


def test_my_grants_lists_only_mine(alice, api_as, grafana):
    mine = GrantFactory(request__requester=alice.user(), request__resource=grafana)
    GrantFactory(request__requester=api_as("dave").user(), request__resource=grafana)

    body = alice.get("/grants").json()

    assert [g["id"] for g in body] == [mine.pk]
    assert body[0]["access"]["state"] == "waiting"  # the sync has not confirmed it


def test_an_extension_of_an_ended_grant_is_a_409_and_files_nothing(alice, grafana):
    grant = GrantFactory(
        request__requester=alice.user(), request__resource=grafana, state=GrantState.EXPIRED
    )

    response = alice.post(
        f"/grants/{grant.pk}/extension-requests", {"duration_minutes": 30, "justification": REASON}
    )

    assert (response.status_code, error(response)["code"]) == (409, "illegal_transition")
    assert AccessRequest.objects.filter(state=RequestState.PENDING).count() == 0
