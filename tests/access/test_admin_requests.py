"""The admin as the approval UI: real action POSTs through the intermediate page.

Every test checks the database and the exact audit rows, not only status codes.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib import messages

from apps.access.actions import AccessAction
from apps.access.models import Approval, Grant
from apps.access.states import GrantState, RequestState
from apps.accounts.actions import AccountAction
from apps.audit.models import AuditAction, AuditEvent
from tests.factories import AccessRequestFactory, ResourceFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/access/accessrequest/"


def decisions() -> list[tuple[str, str, str]]:
    """(action, actor, target id) of the decision entries, in chain order."""
    return list(
        AuditEvent.objects.in_chain_order()
        .filter(
            action__in=[
                AccessAction.REQUEST_APPROVED,
                AccessAction.REQUEST_APPROVAL_RECORDED,
                AccessAction.REQUEST_REJECTED,
                AccessAction.GRANT_ACTIVATED,
                AccessAction.GRANT_SCHEDULED,
            ]
        )
        .values_list("action", "actor_label", "target_id")
    )


def flash(response: Any) -> list[tuple[int, str]]:
    return [(m.level, m.message) for m in messages.get_messages(response.wsgi_request)]


def select(client: Any, action: str, ids: list[int]) -> Any:
    """Step 1: choose the action in the changelist (the browser sends index=0)."""
    return client.post(CHANGELIST, {"action": action, "_selected_action": ids, "index": "0"})


def confirm(client: Any, action: str, ids: list[int], **fields: Any) -> Any:
    """Step 2: the intermediate page's confirm button."""
    data = {"action": action, "_selected_action": ids, "apply": "yes", **fields}
    return client.post(CHANGELIST, data)


@pytest.fixture
def resource() -> Any:
    return ResourceFactory(slug="grafana", name="Grafana admin")


@pytest.fixture
def people(signed_in: Any) -> dict[str, Any]:
    return {
        "alice": signed_in("alice", groups=["engineering"]),
        "bob": signed_in("bob", groups=["approvers"]),
        "carol": signed_in("carol", groups=["compliance"]),
    }


def test_approve_through_the_intermediate_page(people: dict[str, Any], resource: Any) -> None:
    bob, _ = people["bob"]
    _, alice = people["alice"]
    req = AccessRequestFactory(requester=alice, resource=resource, duration_minutes=120)

    page = select(bob, "approve_selected", [req.pk])

    assert page.status_code == 200
    assert "admin/access/accessrequest/action_confirmation.html" in [t.name for t in page.templates]
    assert "Investigating incident INC-1234" in page.content.decode()
    req.refresh_from_db()
    assert req.state == RequestState.PENDING  # nothing happens before confirmation
    assert decisions() == []

    done = confirm(bob, "approve_selected", [req.pk], note="ok for INC-1234", duration_minutes="")

    assert done.status_code == 302
    req.refresh_from_db()
    grant = Grant.objects.get(request=req)
    assert (req.state, req.decided_by.email, req.decision_reason) == (
        RequestState.APPROVED,
        "bob@example.com",
        "ok for INC-1234",
    )
    assert grant.state == GrantState.ACTIVE
    assert grant.expires_at - grant.not_before == timedelta(minutes=120)
    assert decisions() == [
        (AccessAction.REQUEST_APPROVED, "bob@example.com", str(req.pk)),
        (AccessAction.GRANT_ACTIVATED, "bob@example.com", str(grant.pk)),
    ]
    assert flash(done) == [(messages.SUCCESS, "1 approved")]


def test_approve_can_shorten_and_reports_per_object(people: dict[str, Any], resource: Any) -> None:
    bob, bob_user = people["bob"]
    _, alice = people["alice"]
    long_req = AccessRequestFactory(requester=alice, resource=resource, duration_minutes=240)
    other = ResourceFactory(slug="vault")
    short_req = AccessRequestFactory(requester=alice, resource=other, duration_minutes=30)
    own = AccessRequestFactory(requester=bob_user, resource=resource)
    ids = [long_req.pk, short_req.pk, own.pk]

    done = confirm(bob, "approve_selected", ids, duration_minutes="60", note="")

    long_grant = Grant.objects.get(request=long_req)
    short_grant = Grant.objects.get(request=short_req)
    assert long_grant.expires_at - long_grant.not_before == timedelta(minutes=60)
    assert short_grant.expires_at - short_grant.not_before == timedelta(minutes=30)
    own.refresh_from_db()
    assert own.state == RequestState.PENDING
    assert not Grant.objects.filter(request=own).exists()
    assert [e[2] for e in decisions() if e[0] == AccessAction.REQUEST_APPROVED] == [
        str(long_req.pk),
        str(short_req.pk),
    ]
    assert flash(done) == [
        (
            messages.WARNING,
            f"2 approved, 1 skipped: #{own.pk} You cannot decide your own request.",
        )
    ]


def test_requester_who_is_an_approver_cannot_approve_their_own(
    signed_in: Any, resource: Any
) -> None:
    dave, dave_user = signed_in("dave", groups=["approvers"])
    req = AccessRequestFactory(requester=dave_user, resource=resource)

    done = confirm(dave, "approve_selected", [req.pk], note="")

    req.refresh_from_db()
    assert req.state == RequestState.PENDING
    assert not Approval.objects.exists() and not Grant.objects.exists()
    assert decisions() == []
    assert flash(done) == [
        (messages.ERROR, f"1 skipped: #{req.pk} You cannot decide your own request.")
    ]


def test_staff_without_the_decide_permission_cannot_approve(
    people: dict[str, Any], resource: Any
) -> None:
    carol, _ = people["carol"]
    _, alice = people["alice"]
    req = AccessRequestFactory(requester=alice, resource=resource)

    listing = carol.get(CHANGELIST)
    chose = select(carol, "approve_selected", [req.pk])
    confirmed = confirm(carol, "approve_selected", [req.pk], note="")
    button = carol.post(f"{CHANGELIST}{req.pk}/approve/", {"apply": "yes"})

    assert listing.status_code == 200  # auditors may look
    assert listing.context["action_form"] is None  # ...but are offered no action
    assert chose.status_code == 200 and "action_confirmation.html" not in str(chose.templates)
    assert confirmed.status_code == 200
    assert button.status_code == 403
    req.refresh_from_db()
    assert req.state == RequestState.PENDING
    assert decisions() == []


def test_a_requester_without_a_role_cannot_reach_the_admin(
    people: dict[str, Any], resource: Any
) -> None:
    alice_client, alice = people["alice"]
    req = AccessRequestFactory(requester=alice, resource=resource)

    response = confirm(alice_client, "approve_selected", [req.pk], note="")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    req.refresh_from_db()
    assert req.state == RequestState.PENDING
    assert decisions() == []


def test_reject_requires_a_reason(people: dict[str, Any], resource: Any) -> None:
    bob, _ = people["bob"]
    _, alice = people["alice"]
    req = AccessRequestFactory(requester=alice, resource=resource)

    missing = confirm(bob, "reject_selected", [req.pk], reason="   ")
    req.refresh_from_db()
    assert missing.status_code == 200
    assert "reason" in missing.context["form"].errors
    assert req.state == RequestState.PENDING

    done = confirm(bob, "reject_selected", [req.pk], reason="Use the read-only role instead.")

    req.refresh_from_db()
    assert (req.state, req.decision_reason) == (
        RequestState.REJECTED,
        "Use the read-only role instead.",
    )
    assert not Grant.objects.exists()
    assert decisions() == [(AccessAction.REQUEST_REJECTED, "bob@example.com", str(req.pk))]
    event = AuditEvent.objects.get(action=AccessAction.REQUEST_REJECTED)
    assert event.details["reason"] == "Use the read-only role instead."
    assert flash(done) == [(messages.SUCCESS, "1 rejected")]


def test_deciding_twice_skips_the_second_time(people: dict[str, Any], resource: Any) -> None:
    bob, _ = people["bob"]
    _, alice = people["alice"]
    req = AccessRequestFactory(requester=alice, resource=resource)

    confirm(bob, "approve_selected", [req.pk], note="")
    again = confirm(bob, "reject_selected", [req.pk], reason="changed my mind")

    req.refresh_from_db()
    assert req.state == RequestState.APPROVED
    assert [e[0] for e in decisions()] == [
        AccessAction.REQUEST_APPROVED,
        AccessAction.GRANT_ACTIVATED,
    ]
    level, text = flash(again)[-1]
    assert level == messages.ERROR
    assert text.startswith(f"1 skipped: #{req.pk} This request is approved")


def test_quorum_records_an_approval_and_waits(signed_in: Any) -> None:
    resource = ResourceFactory(slug="prod", approvals_required=2)
    bob, _ = signed_in("bob", groups=["approvers"])
    erin, _ = signed_in("erin", groups=["approvers"])
    _, alice = signed_in("alice")
    req = AccessRequestFactory(requester=alice, resource=resource)

    first = confirm(bob, "approve_selected", [req.pk], note="one")
    listing = bob.get(CHANGELIST)
    second = confirm(erin, "approve_selected", [req.pk], note="two")

    assert flash(first) == [(messages.SUCCESS, "1 recorded (more approvals needed)")]
    assert '<td class="field-approvals">1 of 2</td>' in listing.content.decode()
    assert flash(second) == [(messages.SUCCESS, "1 approved")]
    req.refresh_from_db()
    assert req.state == RequestState.APPROVED
    assert [(e[0], e[1]) for e in decisions()] == [
        (AccessAction.REQUEST_APPROVAL_RECORDED, "bob@example.com"),
        (AccessAction.REQUEST_APPROVED, "erin@example.com"),
        (AccessAction.GRANT_ACTIVATED, "erin@example.com"),
    ]


# --- The change page -----------------------------------------------------------------------


def test_change_page_buttons_reuse_the_intermediate_pages(
    people: dict[str, Any], resource: Any
) -> None:
    bob, _ = people["bob"]
    carol, _ = people["carol"]
    _, alice = people["alice"]
    req = AccessRequestFactory(requester=alice, resource=resource)
    other = AccessRequestFactory(requester=alice, resource=ResourceFactory(slug="vault"))
    approve_url = f"{CHANGELIST}{req.pk}/approve/"

    page = bob.get(f"{CHANGELIST}{req.pk}/change/")
    auditor_page = carol.get(f"{CHANGELIST}{req.pk}/change/")
    assert f'action="{approve_url}"' in page.content.decode()
    assert f'action="{CHANGELIST}{req.pk}/reject/"' in page.content.decode()
    assert approve_url not in auditor_page.content.decode()

    assert bob.get(approve_url).status_code == 405  # never on GET
    intermediate = bob.post(approve_url)
    assert intermediate.status_code == 200
    assert intermediate.context["single"] == req
    req.refresh_from_db()
    assert req.state == RequestState.PENDING

    done = bob.post(approve_url, {"apply": "yes", "note": "from the change page"})
    assert done.status_code == 302
    assert done["Location"] == f"{CHANGELIST}{req.pk}/change/"
    req.refresh_from_db()
    assert (req.state, req.decision_reason) == (RequestState.APPROVED, "from the change page")

    rejected = bob.post(f"{CHANGELIST}{other.pk}/reject/", {"apply": "yes", "reason": "no"})
    other.refresh_from_db()
    assert rejected.status_code == 302
    assert other.state == RequestState.REJECTED
    assert [e[0] for e in decisions()] == [
        AccessAction.REQUEST_APPROVED,
        AccessAction.GRANT_ACTIVATED,
        AccessAction.REQUEST_REJECTED,
    ]
    # Decided requests offer no buttons any more; garbage ids are 404.
    assert approve_url not in bob.get(f"{CHANGELIST}{req.pk}/change/").content.decode()
    assert bob.post(f"{CHANGELIST}999999/approve/").status_code == 404
    assert bob.post(f"{CHANGELIST}abc/approve/").status_code == 404


def test_change_page_buttons_need_csrf(csrf_client: Any, people: dict[str, Any]) -> None:
    _, alice = people["alice"]
    req = AccessRequestFactory(requester=alice, resource=ResourceFactory(slug="x"))
    bob = csrf_client("bob", groups=["approvers"])

    response = bob.post(f"{CHANGELIST}{req.pk}/approve/", {"apply": "yes"})

    req.refresh_from_db()
    assert response.status_code == 403
    assert req.state == RequestState.PENDING


def test_requests_are_read_only_in_the_admin(signed_in: Any, resource: Any) -> None:
    admin_client, _ = signed_in("root", groups=["portal-admins"])
    _, alice = signed_in("alice")
    req = AccessRequestFactory(requester=alice, resource=resource)

    edit = admin_client.post(
        f"{CHANGELIST}{req.pk}/change/", {"state": "approved", "justification": "edited"}
    )
    delete = admin_client.post(f"{CHANGELIST}{req.pk}/delete/", {"post": "yes"})
    add = admin_client.get(f"{CHANGELIST}add/")
    listing = admin_client.get(CHANGELIST)

    assert (edit.status_code, delete.status_code, add.status_code) == (403, 403, 403)
    req.refresh_from_db()
    assert (req.state, req.justification) == (
        RequestState.PENDING,
        "Investigating incident INC-1234 in production",
    )
    choices = [name for name, _ in listing.context["action_form"].fields["action"].choices]
    assert "delete_selected" not in choices
    assert {"approve_selected", "reject_selected"} <= set(choices)


def test_change_page_shows_approvals_inline(signed_in: Any) -> None:
    resource = ResourceFactory(slug="prod", approvals_required=2)
    bob, _ = signed_in("bob", groups=["approvers"])
    erin, _ = signed_in("erin", groups=["approvers"])
    _, alice = signed_in("alice")
    req = AccessRequestFactory(requester=alice, resource=resource)
    confirm(bob, "approve_selected", [req.pk], note="first look is fine")

    html = erin.get(f"{CHANGELIST}{req.pk}/change/").content.decode()

    assert "approvals so far" in html.lower()
    assert "first look is fine" in html
    assert "1 of 2" in html


def test_changelist_puts_pending_first_and_filters(people: dict[str, Any], resource: Any) -> None:
    bob, _ = people["bob"]
    _, alice = people["alice"]
    old_pending = AccessRequestFactory(requester=alice, resource=resource)
    old_pending.created_at -= timedelta(hours=30)
    old_pending.expires_at += timedelta(hours=30)
    old_pending.save()
    decided = AccessRequestFactory(
        requester=alice, resource=ResourceFactory(slug="vault"), state=RequestState.REJECTED
    )
    fresh = AccessRequestFactory(requester=alice, resource=ResourceFactory(slug="wiki"))

    listing = bob.get(CHANGELIST)
    old = bob.get(CHANGELIST + "?age=old")
    pending = bob.get(CHANGELIST + "?state__exact=pending")
    found = bob.get(CHANGELIST + "?q=INC-1234")

    assert list(listing.context["cl"].result_list) == [fresh, old_pending, decided]
    assert list(old.context["cl"].result_list) == [old_pending]
    assert set(pending.context["cl"].result_list) == {fresh, old_pending}
    assert found.context["cl"].result_count == 3


# --- Resources and users -------------------------------------------------------------------


JSON_DEFAULTS = ("base_ppl", "requester_groups", "approver_groups", "auto_approve_rules")


def resource_form(instance: Any = None, **overrides: Any) -> dict[str, Any]:
    """The admin form as a browser posts it, including the hidden initial values Django
    renders for fields with callable defaults (without them every JSON field looks changed).
    """
    import json

    from apps.access.models import Resource

    source = instance or Resource()
    data = {
        f"initial-{name}": json.dumps(getattr(source, name))
        for name in (*JSON_DEFAULTS, "duration_choices", "break_glass_groups")
    }
    data |= {
        "name": "Kibana",
        "slug": "kibana",
        "description": "Logs",
        "is_active": "on",
        "zero_policy_name": "",
        "base_ppl": "[]",
        "requester_groups": "[]",
        "approver_groups": '["approvers"]',
        "approvals_required": "1",
        "auto_approve_rules": "[]",
        "duration_choices": "[60, 240]",
        "max_duration_minutes": "480",
        "allow_scheduled": "on",
        "max_schedule_ahead_days": "30",
        "justification_required": "on",
        "justification_min_length": "10",
        "break_glass_groups": "[]",
        "break_glass_max_minutes": "60",
        "slack_webhook_url": "",
        "schedule": "",
        # The access-level inline's management form, as the page renders it.
        "levels-TOTAL_FORMS": "0",
        "levels-INITIAL_FORMS": "0",
        "levels-MIN_NUM_FORMS": "0",
        "levels-MAX_NUM_FORMS": "1000",
    }
    data.update(overrides)
    return data


def test_resource_admin_saves_audits_and_resyncs(signed_in: Any) -> None:
    from apps.access.models import Resource

    admin_client, _ = signed_in("root", groups=["portal-admins"])

    created = admin_client.post("/admin/access/resource/add/", resource_form())
    resource = Resource.objects.get(slug="kibana")
    changed = admin_client.post(
        f"/admin/access/resource/{resource.pk}/change/",
        resource_form(resource, name="Kibana (prod)"),
    )
    invalid = admin_client.post(
        f"/admin/access/resource/{resource.pk}/change/",
        resource_form(resource, duration_choices="[999]"),
    )

    assert (created.status_code, changed.status_code, invalid.status_code) == (302, 302, 200)
    resource.refresh_from_db()
    assert resource.name == "Kibana (prod)"
    assert resource.duration_choices == [60, 240]  # the invalid save changed nothing
    assert resource.sync_generation == 2  # one bump per saved change of the policy
    events = list(
        AuditEvent.objects.in_chain_order()
        .filter(action__in=[AccessAction.RESOURCE_CREATED, AccessAction.RESOURCE_CHANGED])
        .values_list("action", "actor_label", "details")
    )
    assert events[0][:2] == (AccessAction.RESOURCE_CREATED, "root@example.com")
    assert events[1] == (
        AccessAction.RESOURCE_CHANGED,
        "root@example.com",
        {"changed": ["name"], "changes": {"name": ["Kibana", "Kibana (prod)"]}},
    )
    assert len(events) == 2
    # One chained entry per change: django-auditlog's field history is not copied in.
    assert not AuditEvent.objects.filter(action=AuditAction.FIELD_CHANGED).exists()


def test_resources_are_archived_not_deleted(signed_in: Any) -> None:
    admin_client, _ = signed_in("root", groups=["portal-admins"])
    bob, _ = signed_in("bob", groups=["approvers"])
    resource = ResourceFactory(slug="kibana")

    delete = admin_client.post(f"/admin/access/resource/{resource.pk}/delete/", {"post": "yes"})
    listing = admin_client.get("/admin/access/resource/")
    archived = admin_client.post(
        "/admin/access/resource/",
        {"action": "archive_selected", "_selected_action": [resource.pk], "index": "0"},
    )
    approver_edit = bob.post(
        f"/admin/access/resource/{resource.pk}/change/", resource_form(slug="kibana")
    )

    assert delete.status_code == 403
    choices = [n for n, _ in listing.context["action_form"].fields["action"].choices]
    assert "delete_selected" not in choices
    assert archived.status_code == 302
    resource.refresh_from_db()
    assert resource.is_active is False
    event = AuditEvent.objects.get(action=AccessAction.RESOURCE_CHANGED)
    assert event.details == {"changed": ["is_active"], "changes": {"is_active": [True, False]}}
    assert approver_edit.status_code == 403


def test_user_admin_keeps_identity_read_only(signed_in: Any) -> None:
    from apps.accounts.models import User

    admin_client, _ = signed_in("root", groups=["portal-admins"])
    _, alice = signed_in("alice", groups=["engineering"])
    url = f"/admin/accounts/user/{alice.pk}/change/"

    page = admin_client.get(url)
    saved = admin_client.post(
        url,
        {
            "email": "evil@example.com",
            "username": "idp|someone-else",
            "is_superuser": "on",
            "time_zone": "Europe/Berlin",
            "notify_expiry": "on",
        },
    )

    form_fields = set(page.context["adminform"].form.fields)
    assert form_fields == {"is_active", "time_zone", "notify_expiry"}
    assert "password" not in page.content.decode().lower()
    assert saved.status_code == 302
    alice = User.objects.get(pk=alice.pk)
    assert (alice.email, alice.username, alice.is_superuser) == (
        "alice@example.com",
        "idp|alice",
        False,
    )
    assert (alice.is_active, alice.time_zone) == (False, "Europe/Berlin")
    event = AuditEvent.objects.filter(action=AccountAction.USER_UPDATED, target_id=str(alice.pk))
    assert event.get().details["changes"] == {
        "is_active": [True, False],
        "time_zone": ["", "Europe/Berlin"],
    }
    assert admin_client.get("/admin/accounts/user/add/").status_code == 403
    assert admin_client.post(url.replace("change", "delete"), {"post": "yes"}).status_code == 403
    listing = admin_client.get("/admin/accounts/user/")
    assert listing.context["action_form"] is None  # delete_selected was the only action
