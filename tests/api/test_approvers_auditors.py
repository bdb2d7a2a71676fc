"""Approver and auditor endpoints: same roles, same services, same audit entries as the admin."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.access.actions import AccessAction
from apps.access.models import AccessRequest, Approval, Grant
from apps.access.states import GrantState, RequestState
from apps.audit.models import AuditAction, AuditEvent
from tests.api.conftest import error
from tests.factories import GrantFactory, ResourceFactory

# Requests need somebody able to approve them (a request nobody could approve is refused).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("standby_approver")]

REASON = "Debugging the alerting pipeline"


@pytest.fixture
def pending(alice, grafana):
    body = {"resource": "grafana-admin", "duration_minutes": 60, "justification": REASON}
    return alice.post("/requests", body).json()


def test_pending_lists_what_i_may_decide(bob, pending, api_as):
    other = ResourceFactory(slug="other", approver_groups=["someone-else"])
    dave = api_as("dave", groups=["engineering"])
    dave.post(
        "/requests", {"resource": other.slug, "duration_minutes": 60, "justification": REASON}
    )

    body = bob.get("/pending").json()

    assert [(r["id"], r["requester"], r["approved_by_me"]) for r in body] == [
        (pending["id"], "alice@example.com", False)
    ]


def test_requesters_may_not_list_or_decide(alice, pending):
    listed = alice.get("/pending")
    decided = alice.post(f"/requests/{pending['id']}/approve", {})

    assert (listed.status_code, error(listed)["code"]) == (403, "not_allowed")
    assert decided.status_code == 403
    assert AccessRequest.objects.get().state == RequestState.PENDING


def test_approve_creates_the_grant_audited_like_the_admin(bob, pending):
    response = bob.post(
        f"/requests/{pending['id']}/approve", {"duration_minutes": 30, "note": "ok"}
    )

    assert response.status_code == 200
    body = response.json()
    grant = Grant.objects.get()
    assert body["request"]["state"] == "approved"
    assert (body["grant"]["id"], body["grant"]["state"]) == (grant.pk, "active")
    assert grant.expires_at - grant.not_before == timedelta(minutes=30)
    approved = AuditEvent.objects.get(action=AccessAction.REQUEST_APPROVED)
    assert approved.actor_label == "bob@example.com"
    assert approved.details == {
        "requester": "alice@example.com",
        "duration_minutes": 30,
        "approvers": ["bob@example.com"],
        "note": "ok",
        "conditions": {"duration_minutes": 30, "level": None},
        "conditions_by_approver": [
            {"approver": "bob@example.com", "duration_minutes": 30, "level": None}
        ],
        "channel": "api",
    }
    activated = AuditEvent.objects.get(action=AccessAction.GRANT_ACTIVATED)
    assert activated.details["channel"] == "api"


def test_approving_for_longer_than_asked_is_a_422(bob, pending):
    response = bob.post(f"/requests/{pending['id']}/approve", {"duration_minutes": 120})

    assert (response.status_code, error(response)["code"]) == (422, "policy_violation")
    assert Approval.objects.count() == 0


def test_my_own_request_cannot_be_approved(api_as, grafana):
    erin = api_as("erin", groups=["approvers"])
    req = erin.post(
        "/requests", {"resource": "grafana-admin", "duration_minutes": 60, "justification": REASON}
    ).json()

    response = erin.post(f"/requests/{req['id']}/approve", {})

    assert (response.status_code, error(response)["message"]) == (
        403,
        "You cannot decide your own request.",
    )
    assert Grant.objects.count() == 0


def test_deciding_twice_is_a_409(bob, pending):
    bob.post(f"/requests/{pending['id']}/approve", {})

    again = bob.post(f"/requests/{pending['id']}/reject", {"reason": "changed my mind"})

    assert (again.status_code, error(again)["code"]) == (409, "illegal_transition")
    assert AccessRequest.objects.get().state == RequestState.APPROVED


def test_reject_needs_a_reason_and_is_audited(bob, pending):
    empty = bob.post(f"/requests/{pending['id']}/reject", {"reason": "  "})
    done = bob.post(f"/requests/{pending['id']}/reject", {"reason": "no ticket"})

    assert (empty.status_code, error(empty)["code"]) == (422, "policy_violation")
    assert done.json()["state"] == "rejected"
    event = AuditEvent.objects.get(action=AccessAction.REQUEST_REJECTED)
    assert event.details == {
        "requester": "alice@example.com",
        "reason": "no ticket",
        "channel": "api",
    }


def test_revoke_and_extend_as_approver(bob, alice, grafana):
    grant = GrantFactory(request__requester=alice.user(), request__resource=grafana)
    new_end = (grant.expires_at + timedelta(minutes=30)).replace(microsecond=0)

    extended = bob.post(
        f"/grants/{grant.pk}/extend",
        {"expires_at": new_end.isoformat(), "reason": "incident still open"},
    )
    revoked = bob.post(f"/grants/{grant.pk}/revoke", {"reason": "done"})

    assert extended.json()["expires_at"] == new_end.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert revoked.json()["state"] == "revoked"
    grant.refresh_from_db()
    assert (grant.state, grant.expires_at, grant.revoke_reason) == (
        GrantState.REVOKED,
        new_end,
        "done",
    )
    assert [
        (e.action, e.details["channel"])
        for e in AuditEvent.objects.filter(action__startswith="grant.").order_by("seq")
    ] == [("grant.extended", "api"), ("grant.revoked", "api")]


def test_extending_past_the_maximum_needs_override(bob, alice, grafana):
    grant = GrantFactory(request__requester=alice.user(), request__resource=grafana)
    far = grant.not_before + timedelta(hours=9)

    refused = bob.post(f"/grants/{grant.pk}/extend", {"expires_at": far.isoformat(), "reason": "x"})
    allowed = bob.post(
        f"/grants/{grant.pk}/extend",
        {"expires_at": far.isoformat(), "reason": "x", "override": True},
    )

    assert (refused.status_code, error(refused)["code"]) == (422, "policy_violation")
    assert allowed.status_code == 200
    assert Grant.objects.get().expires_at == far


def test_requesters_may_not_revoke_others(alice, api_as, grafana):
    dave = api_as("dave", groups=["engineering"])
    grant = GrantFactory(request__requester=dave.user(), request__resource=grafana)

    response = alice.post(f"/grants/{grant.pk}/revoke", {"reason": "mine now"})

    assert (response.status_code, error(response)["code"]) == (403, "not_allowed")
    assert Grant.objects.get().state == GrantState.ACTIVE


@pytest.fixture
def three_grants(alice, api_as, grafana):
    """Alice's and Dave's open grants on Grafana (Bob approves it), one on HR and one ended."""
    hr = ResourceFactory(slug="hr-records", approver_groups=["hr-approvers"])
    dave = api_as("dave", groups=["engineering"]).user()
    return {
        "alice": GrantFactory(request__requester=alice.user(), request__resource=grafana),
        "dave": GrantFactory(request__requester=dave, request__resource=grafana),
        "hr": GrantFactory(request__requester=dave, request__resource=hr),
        "ended": GrantFactory(
            request__requester=dave, request__resource=grafana, state=GrantState.REVOKED
        ),
    }


def test_an_approver_lists_the_open_grants_of_the_resources_they_approve(bob, three_grants):
    body = bob.get("/grants", scope="all", open="true").json()
    everything = bob.get("/grants", scope="all").json()
    own = bob.get("/grants").json()

    assert {g["id"] for g in body} == {three_grants["alice"].pk, three_grants["dave"].pk}
    assert three_grants["ended"].pk in {g["id"] for g in everything}
    assert three_grants["hr"].pk not in {g["id"] for g in everything}
    assert own == []  # the default scope stays "mine"


def test_an_auditor_lists_every_grant_and_a_requester_only_their_own(carol, alice, three_grants):
    audited = carol.get("/grants", scope="all", open="true").json()
    requester = alice.get("/grants", scope="all").json()

    assert {g["id"] for g in audited} == {
        three_grants["alice"].pk,
        three_grants["dave"].pk,
        three_grants["hr"].pk,
    }
    assert [g["id"] for g in requester] == [three_grants["alice"].pk]


def test_an_unknown_grant_scope_is_a_400_naming_the_allowed_ones(bob, db):
    response = bob.get("/grants", scope="everyone")

    assert response.status_code == 400
    assert "'mine' or 'all'" in error(response)["fields"]["query.scope"]


def test_auditor_exports_with_the_pages_filters_and_the_export_is_audited(carol, pending):
    response = carol.get("/audit/export", format="jsonl", action="request.submitted")

    assert response.status_code == 200
    lines = [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]
    assert [line["action"] for line in lines] == ["request.submitted"]
    exported = AuditEvent.objects.get(action=AuditAction.AUDIT_EXPORTED)
    assert exported.details["via"] == "api"
    assert exported.details["filters"]["action"] == "request.submitted"


def test_bad_export_filters_are_a_400_and_nothing_is_recorded(carol, db):
    response = carol.get("/audit/export", since="yesterday")

    assert (response.status_code, error(response)["code"]) == (400, "validation_error")
    assert "since" in error(response)["fields"]
    assert not AuditEvent.objects.filter(action=AuditAction.AUDIT_EXPORTED).exists()


def test_only_auditors_export(alice, db):
    response = alice.get("/audit/export")

    assert (response.status_code, error(response)["code"]) == (403, "not_allowed")
    assert not AuditEvent.objects.filter(action=AuditAction.AUDIT_EXPORTED).exists()


def test_access_reports(carol, alice, grafana):
    grant = GrantFactory(request__requester=alice.user(), request__resource=grafana)
    start = (timezone.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    end = (timezone.now() + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")

    between = carol.get("/reports/access", resource="grafana-admin", start=start, end=end).json()
    now = carol.get("/reports/access-now").json()

    assert [r["grant_id"] for r in between["rows"]] == [grant.pk]
    assert [r["email"] for r in now["rows"]] == ["alice@example.com"]
    viewed = AuditEvent.objects.filter(action=AccessAction.REPORT_VIEWED).order_by("seq")
    assert [(e.details["report"], e.details["via"]) for e in viewed] == [
        ("who_had_access", "api"),
        ("who_has_access_now", "api"),
    ]


def test_requesters_see_no_reports(alice, grafana):
    response = alice.get("/reports/access-now")

    assert response.status_code == 403
    assert not AuditEvent.objects.filter(action=AccessAction.REPORT_VIEWED).exists()


@pytest.mark.parametrize("edge", ["0001-01-01T00:30:00+01:00", "9999-12-31T23:30:00-01:00"])
def test_a_time_with_no_utc_form_is_a_validation_error(bob, alice, grafana, edge):
    grant = GrantFactory(request__requester=alice.user(), request__resource=grafana)
    before = Grant.objects.get().expires_at

    response = bob.post(f"/grants/{grant.pk}/extend", {"expires_at": edge, "reason": "x"})

    assert (response.status_code, error(response)["code"]) == (400, "validation_error")
    assert Grant.objects.get().expires_at == before
