"""Requester pages: what people see, what they can submit, and what is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.test import RequestFactory
from django.utils import timezone

from apps.access import services
from apps.access.actions import AccessAction
from apps.access.errors import server_error
from apps.access.models import AccessRequest, Grant
from apps.access.states import GrantState, RequestKind, RequestState, SyncStatus
from apps.accounts.actions import AccountAction
from apps.accounts.models import User
from apps.accounts.timezones import when as reach_when
from apps.audit.models import AuditEvent
from tests.factories import AccessRequestFactory, GrantFactory, ResourceFactory, UserFactory

# Requests need somebody able to approve them (a request nobody could approve is refused).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("standby_approver")]

GOOD_REASON = "Rotating the TLS certificate for INC-42"


def post_data(**overrides: Any) -> dict[str, Any]:
    data = {
        "resource": "grafana",
        "duration": "60",
        "justification": GOOD_REASON,
        "ticket": "",
        "start": "now",
        "start_at": "",
        "tz": "",
    }
    data.update(overrides)
    return data


def submitted() -> int:
    return AuditEvent.objects.filter(action=AccessAction.REQUEST_SUBMITTED).count()


@pytest.fixture
def grafana() -> Any:
    return ResourceFactory(slug="grafana", name="Grafana admin", duration_choices=[60, 240])


@pytest.fixture
def alice(signed_in: Any) -> Any:
    return signed_in("alice", groups=["engineering"])


# --- Dashboard -----------------------------------------------------------------------------


def test_dashboard_lists_only_my_grants_and_requests(alice: Any, grafana: Any) -> None:
    client, user = alice
    other = UserFactory()
    vault = ResourceFactory(slug="vault", name="Vault")
    mine_grant = GrantFactory(request__requester=user, request__resource=grafana)
    mine_req = AccessRequestFactory(requester=user, resource=vault)
    theirs_grant = GrantFactory(request__requester=other, request__resource=vault)
    theirs_req = AccessRequestFactory(requester=other, resource=grafana)

    response = client.get("/")

    assert response.status_code == 200
    assert [g.pk for g in response.context["grants"]] == [mine_grant.pk]
    # Newest first.
    assert [r.pk for r in response.context["requests"]] == [mine_req.pk, mine_grant.request_id]
    html = response.content.decode()
    assert f'href="/requests/{mine_req.pk}"' in html
    assert f'href="/requests/{theirs_req.pk}"' not in html
    assert f'href="/requests/{theirs_grant.request_id}"' not in html
    assert 'href="/requests/new"' in html


def test_dashboard_says_whether_i_can_get_in_now(alice: Any, grafana: Any) -> None:
    client, user = alice
    User.objects.filter(pk=user.pk).update(time_zone="Europe/Berlin")
    now = timezone.now()
    end = now + timedelta(minutes=90)
    GrantFactory(
        request__requester=user,
        request__resource=grafana,
        not_before=now - timedelta(minutes=3),
        sync_status=SyncStatus.LIVE,
        live_at=now - timedelta(minutes=3),
        expires_at=end,
    )

    html = client.get("/").content.decode()

    local = end.astimezone(ZoneInfo("Europe/Berlin"))
    until = reach_when(end, ZoneInfo("Europe/Berlin"), now)
    assert '<span class="badge access-allowed">Allowed now, until ' + until in html
    assert local.strftime("%Z") in until  # CET or CEST
    assert "Live in Pomerium" not in html and "left" not in html


def test_a_grant_starting_tomorrow_opens_then_never_allowed_now(alice: Any, grafana: Any) -> None:
    client, user = alice
    now = timezone.now()
    start = now + timedelta(days=1)
    GrantFactory(
        request__requester=user,
        request__resource=grafana,
        state=GrantState.SCHEDULED,
        sync_status=SyncStatus.LIVE,
        live_at=now - timedelta(minutes=3),
        not_before=start,
        expires_at=start + timedelta(hours=1),
    )

    html = client.get("/").content.decode()

    assert f'<span class="badge access-opens">Opens {reach_when(start, UTC, now)}</span>' in html
    assert "access-allowed" not in html


def test_dashboard_empty_state_when_nothing_is_requestable(signed_in: Any) -> None:
    ResourceFactory(requester_groups=["sre"])
    client, _ = signed_in("nobody", groups=["marketing"])

    response = client.get("/")
    new = client.get("/requests/new")

    assert response.status_code == 200
    assert "There is nothing you can request yet" in response.content.decode()
    assert 'class="button" href="/requests/new"' not in response.content.decode()
    assert new.status_code == 200
    assert new.templates[0].name == "access/nothing_to_request.html"
    assert "<code>marketing</code>" in new.content.decode()


def test_dashboard_offers_break_glass_only_to_its_groups(signed_in: Any) -> None:
    ResourceFactory(slug="prod-db", name="Prod DB", break_glass_groups=["oncall"])
    oncall, _ = signed_in("olga", groups=["oncall"])
    other, _ = signed_in("otto", groups=["engineering"])

    assert 'href="/break-glass/prod-db"' in oncall.get("/").content.decode()
    assert 'href="/break-glass/prod-db"' not in other.get("/").content.decode()


# --- New request ---------------------------------------------------------------------------


def test_new_request_creates_one_pending_request_and_its_audit_row(
    alice: Any, grafana: Any
) -> None:
    client, user = alice

    response = client.post("/requests/new", post_data(ticket="INC-42"))

    req = AccessRequest.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/requests/{req.pk}"
    assert (req.requester, req.resource, req.state) == (user, grafana, RequestState.PENDING)
    assert (req.duration_minutes, req.justification, req.ticket) == (60, GOOD_REASON, "INC-42")
    assert req.start_at is None
    event = AuditEvent.objects.get(action=AccessAction.REQUEST_SUBMITTED)
    assert (event.actor_id, event.target_id) == (user.pk, str(req.pk))
    page = client.get(response["Location"])
    assert "Your request for Grafana admin is waiting for approval." in page.content.decode()


@pytest.mark.parametrize(
    ("zone_pref", "browser", "expected_zone"),
    [
        ("Europe/Berlin", "America/New_York", "Europe/Berlin"),  # the preference wins
        ("", "America/New_York", "America/New_York"),  # else the browser's
        ("", "Not/AZone", "UTC"),  # else UTC
    ],
)
def test_scheduled_start_is_read_in_the_persons_zone(
    alice: Any, grafana: Any, zone_pref: str, browser: str, expected_zone: str
) -> None:
    client, user = alice
    user.time_zone = zone_pref
    user.save()
    local = (timezone.now() + timedelta(days=2)).astimezone(ZoneInfo(expected_zone))
    wall = local.replace(tzinfo=None, second=0, microsecond=0)

    response = client.post(
        "/requests/new",
        post_data(start="later", start_at=wall.strftime("%Y-%m-%dT%H:%M"), tz=browser),
    )

    assert response.status_code == 302
    req = AccessRequest.objects.get()
    assert req.start_at == wall.replace(tzinfo=ZoneInfo(expected_zone)).astimezone(UTC)


def test_resource_in_query_string_is_preselected(alice: Any, grafana: Any) -> None:
    ResourceFactory(slug="vault", name="Vault", duration_choices=[30])
    client, _ = alice

    response = client.get("/requests/new?resource=grafana")

    assert response.status_code == 200
    assert response.context["form"].initial == {"resource": "grafana"}
    html = response.content.decode()
    assert '<option value="grafana" selected>' in html
    # Only the chosen resource's durations are offered.
    assert [c[0] for c in response.context["form"].fields["duration"].choices] == [60, 240]


def djangos_select(form: Any, name: str) -> str:
    """What Django's own ``Select`` renders for ``form[name]`` (the memoized widget's twin)."""
    from django import forms

    select = forms.Select(choices=form.fields[name].choices)
    return str(form[name].as_widget(widget=select))


def test_the_resource_select_is_djangos_for_each_reader(
    alice: Any, grafana: Any, signed_in: Any
) -> None:
    """The resource select is rendered once per distinct input (``MemoizedSelect``): each
    reader gets exactly Django's select of the resources they may request, with their
    choice marked, never another reader's options."""
    ResourceFactory(slug="vault", name="Vault <prod>", requester_groups=["sre"])
    sre_client, _ = signed_in("sam", groups=["sre"])
    alice_client, _ = alice
    for client, query, offered, chosen in (
        (alice_client, "", ["grafana"], ""),
        (sre_client, "", ["grafana", "vault"], ""),
        (sre_client, "?resource=vault", ["grafana", "vault"], "vault"),
        (alice_client, "?resource=grafana", ["grafana"], "grafana"),
        (alice_client, "?resource=vault", ["grafana"], ""),
    ):
        for _ in range(2):
            response = client.get("/requests/new" + query)
            form = response.context["form"]
            html = djangos_select(form, "resource")
            assert html in response.content.decode()
            assert [v for v, _ in form.fields["resource"].choices] == ["", *offered]
            assert f'<option value="{chosen}" selected>' in html
    assert "Vault &lt;prod&gt;" in sre_client.get("/requests/new").content.decode()


def test_unknown_resource_in_query_string_is_explained_not_an_error(
    alice: Any, grafana: Any
) -> None:
    client, _ = alice

    response = client.get("/requests/new?resource=no-such-thing%00%F0%9F%92%A5")

    assert response.status_code == 200
    assert "There is no resource with that name that you may request" in response.content.decode()
    assert response.context["form"].initial == {}


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"resource": ""}, "resource", "This field is required."),
        ({"resource": "nope"}, "resource", "Choose a resource you may request"),
        ({"resource": "sre-only"}, "resource", "Choose a resource you may request"),
        ({"duration": "999"}, "duration", "offered for Grafana admin: 1 hour, 4 hours."),
        ({"duration": "30"}, "duration", "offered for Grafana admin: 1 hour, 4 hours."),
        ({"duration": "x"}, "duration", "offered for Grafana admin"),
        ({"justification": "short"}, "justification", "at least 10 characters"),
        ({"justification": "x" * 5000}, "justification", "at most 4000 characters"),
        ({"justification": "nul\x00byte here"}, "justification", "Null characters"),
        ({"ticket": "T" * 121}, "ticket", "at most 120 characters"),
        ({"start": "later"}, "start_at", "Choose when access should start."),
        ({"start": "sometime"}, "start", "Select a valid choice."),
        ({"start": "later", "start_at": "yesterday"}, "start_at", "Enter a date and time"),
        ({"start": "later", "start_at": "2001-01-01T10:00"}, "start_at", "must be in the future"),
        ({"start": "later", "start_at": "9999-12-31T23:59"}, "start_at", "at most 30 days"),
        (
            {"start": "later", "start_at": "9999-12-31T23:59", "tz": "Etc/GMT+12"},
            "start_at",
            "out of range",
        ),
        (
            {"start": "later", "start_at": "0001-01-01T00:00", "tz": "Etc/GMT-14"},
            "start_at",
            "out of range",
        ),
        (
            {"start": "later", "start_at": "2031-03-30T02:30", "tz": "Europe/Berlin"},
            "start_at",
            "does not exist or occurs twice",
        ),
    ],
)
def test_invalid_request_shows_the_error_and_saves_nothing(
    alice: Any, grafana: Any, overrides: dict[str, str], field: str, message: str
) -> None:
    ResourceFactory(slug="sre-only", requester_groups=["sre"])
    ResourceFactory(slug="vault", duration_choices=[30])
    client, _ = alice

    response = client.post("/requests/new", post_data(**overrides))

    assert response.status_code == 200
    errors = response.context["form"].errors
    assert field in errors, errors
    assert message in " ".join(errors[field])
    assert AccessRequest.objects.count() == 0
    assert submitted() == 0


def test_ticket_required_and_scheduling_rules_come_from_the_resource(alice: Any) -> None:
    ResourceFactory(slug="grafana", ticket_required=True, allow_scheduled=False)
    client, _ = alice
    later = (timezone.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")

    response = client.post("/requests/new", post_data(start="later", start_at=later))

    errors = response.context["form"].errors
    assert "needs a ticket reference" in errors["ticket"][0]
    assert "only grants access starting now" in errors["start"][0]
    assert AccessRequest.objects.count() == 0


def test_service_refusal_is_a_form_error_and_saves_nothing(alice: Any, grafana: Any) -> None:
    client, user = alice
    AccessRequestFactory(requester=user, resource=grafana)

    response = client.post("/requests/new", post_data())

    assert response.status_code == 200
    assert "already have a pending request for Grafana admin" in " ".join(
        response.context["form"].non_field_errors()
    )
    assert AccessRequest.objects.count() == 1
    assert submitted() == 0


def test_request_with_a_live_grant_says_it_is_an_extension(alice: Any, grafana: Any) -> None:
    client, user = alice
    grant = GrantFactory(request__requester=user, request__resource=grafana)

    page = client.get("/requests/new?resource=grafana")
    response = client.post("/requests/new", post_data())

    assert page.context["extends"] == grant
    assert "This will be a request to <strong>extend</strong>" in page.content.decode()
    req = AccessRequest.objects.get(state=RequestState.PENDING)
    assert (req.kind, req.extends_grant) == (RequestKind.EXTENSION, grant)
    assert response.status_code == 302


# --- Request detail and the requester's actions --------------------------------------------


def test_request_detail_visibility(signed_in: Any, grafana: Any) -> None:
    requester, user = signed_in("alice")
    stranger, _ = signed_in("mallory", groups=["engineering"])
    approver, _ = signed_in("bob", groups=["approvers"])
    auditor, _ = signed_in("carol", groups=["compliance"])
    other_approver, _ = signed_in("dave", groups=["approvers"])
    req = AccessRequestFactory(requester=user, resource=grafana)
    locked = AccessRequestFactory(resource=ResourceFactory(approver_groups=["db-admins"]))

    assert requester.get(f"/requests/{req.pk}").status_code == 200
    assert approver.get(f"/requests/{req.pk}").status_code == 200
    assert auditor.get(f"/requests/{req.pk}").status_code == 200
    assert stranger.get(f"/requests/{req.pk}").status_code == 404
    # An approver of another resource may not (issue 27, gap 2: tests/access/test_visibility.py).
    assert other_approver.get(f"/requests/{locked.pk}").status_code == 404
    assert requester.get(f"/requests/{locked.pk}").status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/requests/abc",
        "/requests/-1",
        "/requests/99999999999999999999999999999",
        "/requests/1/cancel/../../etc",
        "/break-glass/%F0%9F%92%A5",
        "/break-glass/unknown",
    ],
)
def test_garbage_urls_are_404(alice: Any, path: str) -> None:
    client, _ = alice
    assert client.get(path).status_code == 404


def test_request_detail_shows_decision_quorum_and_window(alice: Any) -> None:
    client, user = alice
    resource = ResourceFactory(slug="grafana", approvals_required=2)
    approver = UserFactory(groups=["approvers"], display_name="Bob Approver")
    req = AccessRequestFactory(requester=user, resource=resource)
    services.approve_request(req, approver=approver, note="looks fine")

    html = client.get(f"/requests/{req.pk}").content.decode()

    assert "1 of 2" in html
    assert "Bob Approver" in html and "looks fine" in html
    assert "Cancel this request" in html


def test_cancel_moves_the_request_and_audits_it(alice: Any, grafana: Any) -> None:
    client, user = alice
    req = AccessRequestFactory(requester=user, resource=grafana)

    response = client.post(f"/requests/{req.pk}/cancel")

    req.refresh_from_db()
    assert response.status_code == 302
    assert req.state == RequestState.CANCELLED
    event = AuditEvent.objects.get(action=AccessAction.REQUEST_CANCELLED)
    assert (event.actor_id, event.target_id) == (user.pk, str(req.pk))


def test_cancel_is_post_only_and_only_for_the_requester(signed_in: Any, grafana: Any) -> None:
    owner, user = signed_in("alice")
    stranger, _ = signed_in("mallory")
    approver, _ = signed_in("bob", groups=["approvers"])
    req = AccessRequestFactory(requester=user, resource=grafana)

    assert owner.get(f"/requests/{req.pk}/cancel").status_code == 405
    assert stranger.post(f"/requests/{req.pk}/cancel").status_code == 404
    # An approver sees the request but may not withdraw it for the requester.
    response = approver.post(f"/requests/{req.pk}/cancel", follow=True)
    assert "Only the requester can cancel this request." in response.content.decode()

    req.refresh_from_db()
    assert req.state == RequestState.PENDING
    assert not AuditEvent.objects.filter(action=AccessAction.REQUEST_CANCELLED).exists()


def test_end_my_access_now_revokes_my_grant(alice: Any, grafana: Any) -> None:
    client, user = alice
    grant = GrantFactory(request__requester=user, request__resource=grafana)

    page = client.get(f"/requests/{grant.request_id}").content.decode()
    response = client.post(f"/requests/{grant.request_id}/end")

    grant.refresh_from_db()
    assert "End my access now" in page and "Ask for an extension" in page
    assert f'href="/requests/new?resource={grafana.slug}"' in page
    assert response.status_code == 302
    assert (grant.state, grant.revoked_by, grant.revoke_reason) == (
        GrantState.REVOKED,
        user,
        "ended early by the user",
    )
    event = AuditEvent.objects.get(action=AccessAction.GRANT_REVOKED)
    assert (event.actor_id, event.details["reason"]) == (user.pk, "ended early by the user")


def test_only_the_holder_can_end_access_here(signed_in: Any, grafana: Any) -> None:
    _, user = signed_in("alice")
    approver, _ = signed_in("bob", groups=["approvers"])
    grant = GrantFactory(request__requester=user, request__resource=grafana)

    response = approver.post(f"/requests/{grant.request_id}/end")

    grant.refresh_from_db()
    assert response.status_code == 403
    assert grant.state == GrantState.ACTIVE


def test_csrf_is_enforced_on_requester_forms(csrf_client: Any, grafana: Any) -> None:
    client = csrf_client("alice", groups=["engineering"])

    refused = client.post("/requests/new", post_data())
    assert refused.status_code == 403
    assert AccessRequest.objects.count() == 0

    client.get("/requests/new")  # sets the CSRF cookie, as the browser's first visit would
    token = client.cookies["csrftoken"].value
    accepted = client.post("/requests/new", post_data(csrfmiddlewaretoken=token))
    assert accepted.status_code == 302
    assert AccessRequest.objects.count() == 1


# --- Break-glass ---------------------------------------------------------------------------


def test_break_glass_is_only_for_its_groups(signed_in: Any) -> None:
    resource = ResourceFactory(slug="prod-db", name="Prod DB", break_glass_groups=["oncall"])
    outsider, _ = signed_in("otto", groups=["engineering"])

    page = outsider.get("/break-glass/prod-db")
    post = outsider.post(
        "/break-glass/prod-db", {"duration": "60", "justification": "database is on fire"}
    )

    assert page.status_code == 403
    assert "only for members of its emergency groups" in page.content.decode()
    assert post.status_code == 403
    assert not Grant.objects.filter(resource=resource).exists()


def test_break_glass_grants_at_once_flagged_and_audited(signed_in: Any) -> None:
    resource = ResourceFactory(
        slug="prod-db", name="Prod DB", break_glass_groups=["oncall"], break_glass_max_minutes=60
    )
    client, user = signed_in("olga", groups=["oncall"])

    page = client.get("/break-glass/prod-db")
    short = client.post("/break-glass/prod-db", {"duration": "60", "justification": "fire"})
    response = client.post(
        "/break-glass/prod-db", {"duration": "60", "justification": "primary is down, INC-7"}
    )

    assert page.status_code == 200
    assert [c[0] for c in page.context["form"].fields["duration"].choices] == [60]
    assert "what is on fire" in " ".join(short.context["form"].non_field_errors())
    grant = Grant.objects.get(resource=resource)
    assert (grant.user, grant.is_break_glass, grant.state) == (user, True, GrantState.ACTIVE)
    assert response["Location"] == f"/requests/{grant.request_id}"
    assert AuditEvent.objects.filter(action=AccessAction.GRANT_BREAK_GLASS).count() == 1


# --- Preferences and error pages -----------------------------------------------------------


def test_preferences_save_and_change_how_times_are_shown(alice: Any) -> None:
    client, user = alice

    bad = client.post("/preferences", {"time_zone": "Mars/Olympus", "notify_expiry": "on"})
    response = client.post("/preferences", {"time_zone": "Europe/Berlin"})

    user.refresh_from_db()
    assert "Choose a time zone from the list." in bad.context["form"].errors["time_zone"][0]
    assert response.status_code == 302
    assert (user.time_zone, user.notify_expiry) == ("Europe/Berlin", False)
    assert "Times are shown in Europe/Berlin." in client.get("/").content.decode()
    update = AuditEvent.objects.filter(action=AccountAction.USER_UPDATED, actor=user).get()
    assert update.details == {
        "changes": {"time_zone": ["", "Europe/Berlin"], "notify_expiry": [True, False]}
    }
    client.post("/preferences", {"time_zone": "Europe/Berlin"})  # unchanged: no new entry
    assert AuditEvent.objects.filter(action=AccountAction.USER_UPDATED, actor=user).count() == 1


def test_the_zone_select_is_djangos_for_each_reader(alice: Any, signed_in: Any) -> None:
    """The time zone select is rendered once per distinct input (``MemoizedSelect``): for
    each reader's own zone, the empty choice and a refused value it is exactly Django's
    select, with that reader's zone marked, on the first view and on the next."""
    (alice_client, _), (dave_client, dave) = alice, signed_in("dave", groups=["engineering"])
    dave.time_zone = "Asia/Tokyo"
    dave.save(update_fields=["time_zone"])
    for client, zone in ((alice_client, ""), (dave_client, "Asia/Tokyo"), (alice_client, "")):
        for _ in range(2):
            response = client.get("/preferences")
            select = djangos_select(response.context["form"], "time_zone")
            assert select in response.content.decode()
            assert f'<option value="{zone}" selected>' in select
            assert select.count(" selected>") == 1
    refused = alice_client.post("/preferences", {"time_zone": "Mars/<b>Olympus</b>"})
    select = djangos_select(refused.context["form"], "time_zone")
    assert select in refused.content.decode()
    assert " selected>" not in select


def test_browser_zone_cookie_is_used_without_a_preference(alice: Any) -> None:
    client, _ = alice
    client.cookies["jitportal_tz"] = "Asia/Tokyo"
    assert "Times are shown in Asia/Tokyo." in client.get("/").content.decode()
    client.cookies["jitportal_tz"] = "<script>"
    assert "Times are shown in UTC." in client.get("/").content.decode()


def test_server_error_page_is_standalone() -> None:
    request = RequestFactory().get("/")
    request.request_id = "req-123"  # type: ignore[attr-defined]

    response = server_error(request)

    html = response.content.decode()
    assert response.status_code == 500
    assert "Something went wrong" in html and "req-123" in html
    assert "/static/css/portal.css" not in html  # not base.html


def test_404_page_uses_the_portal_layout(alice: Any) -> None:
    client, _ = alice
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert "There is nothing here, or nothing you may see." in response.content.decode()


def test_times_on_detail_page_follow_the_preference(alice: Any, grafana: Any) -> None:
    client, user = alice
    user.time_zone = "Asia/Kolkata"
    user.save()
    created = datetime(2030, 1, 15, 12, 0, tzinfo=UTC)
    req = AccessRequestFactory(requester=user, resource=grafana, created_at=created)

    html = client.get(f"/requests/{req.pk}").content.decode()

    assert "Tue 15 Jan 2030 17:30 IST" in html  # 12:00 UTC is 17:30 in India
