"""Issue 11 in the admin: least privilege, the write-only webhook, junk ids."""

from __future__ import annotations

from typing import Any

import pytest

from apps.access import reports, services
from apps.access.actions import AccessAction
from apps.access.models import AccessRequest, Grant, Resource
from apps.access.states import RequestState
from apps.audit.models import AuditEvent
from tests.access.test_admin_requests import resource_form
from tests.factories import GrantFactory, ResourceFactory, UserFactory

# Requests need somebody able to approve them (a request nobody could approve is refused).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("standby_approver")]

REQUESTS = "/admin/access/accessrequest/"
GRANTS = "/admin/access/grant/"
RESOURCES = "/admin/access/resource/"
SECRET_PATH = "/services/T0000/B0000/XoXoSecretToken42"
WEBHOOK = "https://hooks.slack.com" + SECRET_PATH


@pytest.fixture
def two_resources() -> dict[str, Any]:
    """Resource A approved by approvers-a, B by approvers-b, one request and grant each."""
    a = ResourceFactory(slug="res-a", name="Resource A", approver_groups=["approvers-a"])
    b = ResourceFactory(slug="res-b", name="Resource B", approver_groups=["approvers-b"])
    alice = UserFactory(username="idp|alice", email="alice@example.com")
    for group in ("approvers-a", "approvers-b"):  # somebody can approve each
        UserFactory(username=f"idp|standby-{group}", email=f"{group}@example.com", groups=[group])
    req_a = services.submit_request(
        requester=alice, resource=a, duration_minutes=60, justification="need A for INC-1"
    )
    req_b = services.submit_request(
        requester=alice, resource=b, duration_minutes=60, justification="need B for INC-2"
    )
    grant_b = GrantFactory(resource=b, request__resource=b, email="zed@example.com")
    return {"a": a, "b": b, "req_a": req_a, "req_b": req_b, "grant_b": grant_b}


@pytest.fixture
def approver_a(as_user: Any) -> Any:
    return as_user("idp|ann", "ann@example.com", groups=["approvers", "approvers-a"])


# --- Least privilege --------------------------------------------------------------------------


def test_an_approver_of_a_sees_no_request_or_grant_of_b(
    approver_a: Any, two_resources: dict[str, Any]
) -> None:
    page = approver_a.get(REQUESTS)
    assert page.status_code == 200
    assert [r.pk for r in page.context["cl"].result_list] == [two_resources["req_a"].pk]
    assert "need B for INC-2" not in page.content.decode()
    detail = approver_a.get(f"{REQUESTS}{two_resources['req_b'].pk}/change/")
    assert detail.status_code == 404  # exactly as for an id never used
    grants = approver_a.get(GRANTS)
    assert list(grants.context["cl"].result_list) == []
    assert "zed@example.com" not in grants.content.decode()
    assert approver_a.get(f"{GRANTS}{two_resources['grant_b'].pk}/change/").status_code == 404
    resources = approver_a.get(RESOURCES)
    assert [r.slug for r in resources.context["cl"].result_list] == ["res-a"]


def test_an_approver_of_a_cannot_decide_b_by_its_id(
    approver_a: Any, two_resources: dict[str, Any]
) -> None:
    req_b = two_resources["req_b"]
    before = AuditEvent.objects.count()
    assert approver_a.post(f"{REQUESTS}{req_b.pk}/approve/", {"apply": "yes"}).status_code == 404
    approver_a.post(
        REQUESTS,
        {"action": "approve_selected", "_selected_action": [req_b.pk], "apply": "yes"},
    )
    assert AccessRequest.objects.get(pk=req_b.pk).state == RequestState.PENDING
    # Only the first sign-in: user.created, and the approver role group's rights set at its
    # first use (group.permissions_changed, via "role sync").
    assert AuditEvent.objects.count() == before + 2


def test_superusers_and_auditors_see_everything(
    superuser: Any, auditor: Any, two_resources: dict[str, Any]
) -> None:
    for client in (superuser, auditor):
        shown = {r.pk for r in client.get(REQUESTS).context["cl"].result_list}
        grant_b = two_resources["grant_b"]
        assert shown == {two_resources["req_a"].pk, two_resources["req_b"].pk, grant_b.request_id}
        assert [g.pk for g in client.get(GRANTS).context["cl"].result_list] == [
            two_resources["grant_b"].pk
        ]


def test_querysets_match_what_the_admin_shows(two_resources: dict[str, Any]) -> None:
    ann = UserFactory(username="idp|ann2", email="ann2@example.com", groups=["approvers-a"])
    assert list(Resource.objects.restrict(ann, "change")) == [two_resources["a"]]
    assert list(AccessRequest.objects.restrict(ann, "view")) == [two_resources["req_a"]]
    assert list(Grant.objects.restrict(ann, "change")) == []
    stranger = UserFactory(username="idp|x", email="x@example.com")
    assert list(AccessRequest.objects.restrict(stranger, "view")) == []
    # Reports read through the same querysets.
    grant_b = two_resources["grant_b"]
    assert [r.grant_id for r in reports.who_has_access_now()] == [grant_b.pk]
    assert reports.who_has_access_now(among=Grant.objects.restrict(ann)) == []
    start, end = grant_b.not_before, grant_b.expires_at
    assert reports.who_had_access(None, start, end, among=Grant.objects.restrict(ann)) == []


APPROVER_GROUPS = [
    [],
    ["approvers"],
    ["approvers-eu"],  # a longer name is another group, not a match of its prefix
    ["sre", "approvers"],
    ['O\'Brien "team"'],
    ["Approvers"],  # group names are case-sensitive
    ["ünïcode", "x"],
]
PEOPLES_GROUPS = [
    ["approvers"],
    ["approvers", "sre"],
    ["approver"],
    ['O\'Brien "team"'],
    ["ünïcode"],
    ["unrelated"],
    [],
]


@pytest.mark.parametrize("groups", PEOPLES_GROUPS)
def test_the_query_decides_as_is_approver_does(groups: list[str]) -> None:
    # The database matches approver groups (ListHasAny); Resource.is_approver is the rule.
    resources = [
        ResourceFactory(slug=f"m-{i}", approver_groups=names)
        for i, names in enumerate(APPROVER_GROUPS)
    ]
    person = UserFactory(username="idp|m", email="m@example.com", groups=groups)
    expected = {r.pk for r in resources if r.is_approver(person)}
    assert {r.pk for r in Resource.objects.restrict(person, "change")} == expected
    if groups == ["approvers"]:
        assert len(expected) == 2


# --- The webhook is write-only ------------------------------------------------------------------


@pytest.fixture
def hooked() -> Resource:
    return ResourceFactory(slug="kibana", name="Kibana", slack_webhook_url=WEBHOOK)


def test_the_webhook_url_is_never_in_an_admin_page(
    superuser: Any, approver: Any, auditor: Any, hooked: Resource
) -> None:
    pages = [
        RESOURCES,
        f"{RESOURCES}{hooked.pk}/change/",
        f"{RESOURCES}{hooked.pk}/history/",
        f"{RESOURCES}add/",
        "/admin/auditlog/logentry/",
        "/admin/audit/auditevent/",
    ]
    seen = 0
    for client in (superuser, approver, auditor):
        for url in pages:
            response = client.get(url)
            html = response.content.decode()
            assert SECRET_PATH not in html and "XoXoSecretToken42" not in html, url
            if url.endswith("/change/") and response.status_code == 200:
                assert "set (hooks.slack.com/…)" in html
                seen += 1
    assert seen == 3  # every role saw the masked value on the change page


def test_the_webhook_is_replaced_cleared_or_kept(superuser: Any, hooked: Resource) -> None:
    url = f"{RESOURCES}{hooked.pk}/change/"
    form = resource_form(hooked, description="", duration_choices="[60, 120, 240]")
    assert superuser.post(url, form).status_code == 302  # nothing typed: kept
    hooked.refresh_from_db()
    assert hooked.slack_webhook_url == WEBHOOK
    new = "https://hooks.slack.com/services/T1/B1/NewSecret99"
    assert superuser.post(url, {**form, "slack_webhook_replace": new}).status_code == 302
    hooked.refresh_from_db()
    assert hooked.slack_webhook_url == new
    both = {**form, "slack_webhook_replace": new + "x", "slack_webhook_clear": "on"}
    assert superuser.post(url, both).status_code == 200  # an error, nothing saved
    plain = {**form, "slack_webhook_replace": "http://hooks.slack.com/services/T/B/plain"}
    assert superuser.post(url, plain).status_code == 200
    hooked.refresh_from_db()
    assert hooked.slack_webhook_url == new
    assert superuser.post(url, {**form, "slack_webhook_clear": "on"}).status_code == 302
    hooked.refresh_from_db()
    assert hooked.slack_webhook_url == ""
    changes = [
        e.details["changed"]
        for e in AuditEvent.objects.filter(action=AccessAction.RESOURCE_CHANGED).order_by("seq")
    ]
    assert changes == [[], ["slack_webhook_url"], ["slack_webhook_url"]]
    trail = "".join(str(e.details) for e in AuditEvent.objects.all())
    assert "NewSecret99" not in trail and "XoXoSecretToken42" not in trail


# --- Junk ids -----------------------------------------------------------------------------------


@pytest.mark.parametrize("junk", ["abc", "1" * 30, "-1", "0", "1.5", "١٢"])
@pytest.mark.parametrize(
    ("changelist", "action"),
    [
        (REQUESTS, "approve_selected"),
        (REQUESTS, "reject_selected"),
        (GRANTS, "revoke_selected"),
        (RESOURCES, "archive_selected"),
        ("/admin/notifications/notification/", "retry_selected"),
        ("/admin/zero/policysync/", "sync_now"),
    ],
)
def test_junk_action_ids_get_400_and_change_nothing(
    superuser: Any, two_resources: dict[str, Any], changelist: str, action: str, junk: str
) -> None:
    superuser.get("/")
    before = AuditEvent.objects.count()
    response = superuser.post(
        changelist,
        {"action": action, "_selected_action": [str(two_resources["req_a"].pk), junk]},
    )
    assert response.status_code == 400
    assert "not a record number" in response.content.decode()
    assert AuditEvent.objects.count() == before
    assert Resource.objects.filter(is_active=True).count() == 2


@pytest.mark.parametrize("junk", ["abc", "9" * 30])
def test_junk_ids_in_admin_urls_are_not_found(superuser: Any, junk: str) -> None:
    assert superuser.post(f"{REQUESTS}{junk}/approve/", {"apply": "yes"}).status_code == 404
    assert superuser.get(f"{GRANTS}{junk}/change/").status_code == 404
    assert superuser.get(f"{RESOURCES}{junk}/change/").status_code == 404
