"""Grant admin: Revoke, Extend and Mark reviewed through their intermediate pages."""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.contrib import messages
from django.utils import timezone

from apps.access.actions import AccessAction
from apps.access.models import Grant, GrantExtension
from apps.access.states import GrantState, SyncStatus
from apps.audit.models import AuditEvent
from tests.factories import GrantFactory, ResourceFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/access/grant/"


def flash(response: Any) -> list[tuple[int, str]]:
    return [(m.level, m.message) for m in messages.get_messages(response.wsgi_request)]


def confirm(client: Any, action: str, ids: list[int], **fields: Any) -> Any:
    data = {"action": action, "_selected_action": ids, "apply": "yes", **fields}
    return client.post(CHANGELIST, data)


def audit(action: str) -> list[tuple[str, str]]:
    return list(
        AuditEvent.objects.in_chain_order()
        .filter(action=action)
        .values_list("actor_label", "target_id")
    )


def local(dt: Any, zone: str = "UTC") -> str:
    return dt.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M")


@pytest.fixture
def resource() -> Any:
    return ResourceFactory(slug="grafana", name="Grafana admin", max_duration_minutes=240)


@pytest.fixture
def bob(signed_in: Any) -> Any:
    return signed_in("bob", groups=["approvers"])


@pytest.fixture
def carol(signed_in: Any) -> Any:
    return signed_in("carol", groups=["compliance"])


@pytest.fixture
def grant(signed_in: Any, resource: Any) -> Any:
    _, alice = signed_in("alice")
    return GrantFactory(request__requester=alice, request__resource=resource)


def test_revoke_through_the_intermediate_page(bob: Any, grant: Any) -> None:
    client, _ = bob

    page = client.post(
        CHANGELIST, {"action": "revoke_selected", "_selected_action": [grant.pk], "index": "0"}
    )
    no_reason = confirm(client, "revoke_selected", [grant.pk], reason="")
    grant.refresh_from_db()
    assert page.status_code == 200 and no_reason.status_code == 200
    assert "admin/access/grant/action_confirmation.html" in [t.name for t in page.templates]
    assert "reason" in no_reason.context["form"].errors
    assert grant.state == GrantState.ACTIVE

    done = confirm(client, "revoke_selected", [grant.pk], reason="left the team")

    grant.refresh_from_db()
    assert (grant.state, grant.revoked_by.email, grant.revoke_reason) == (
        GrantState.REVOKED,
        "bob@example.com",
        "left the team",
    )
    assert grant.sync_status == SyncStatus.PENDING
    assert audit(AccessAction.GRANT_REVOKED) == [("bob@example.com", str(grant.pk))]
    assert flash(done) == [(messages.SUCCESS, "1 revoked")]


def test_staff_without_permission_cannot_revoke_or_extend(carol: Any, grant: Any) -> None:
    client, _ = carol
    end = local(grant.expires_at + timedelta(hours=1))

    listing = client.get(CHANGELIST)
    revoke = confirm(client, "revoke_selected", [grant.pk], reason="x")
    extend = confirm(client, "extend_selected", [grant.pk], new_end=end, reason="x")
    button = client.post(f"{CHANGELIST}{grant.pk}/revoke/", {"apply": "yes", "reason": "x"})

    assert listing.status_code == 200 and listing.context["action_form"] is None
    assert (revoke.status_code, extend.status_code, button.status_code) == (200, 200, 403)
    before = grant.expires_at
    grant.refresh_from_db()
    assert (grant.state, grant.expires_at) == (GrantState.ACTIVE, before)
    assert not AuditEvent.objects.filter(
        action__in=[AccessAction.GRANT_REVOKED, AccessAction.GRANT_EXTENDED]
    ).exists()


def test_extend_moves_the_end_in_the_approvers_zone(bob: Any, grant: Any) -> None:
    client, user = bob
    user.time_zone = "America/New_York"
    user.save()
    new_end = (grant.not_before + timedelta(minutes=180)).replace(second=0, microsecond=0)
    old_end = grant.expires_at

    page = client.post(
        CHANGELIST, {"action": "extend_selected", "_selected_action": [grant.pk], "index": "0"}
    )
    done = confirm(
        client,
        "extend_selected",
        [grant.pk],
        new_end=local(new_end, "America/New_York"),
        reason="migration runs long",
    )

    assert "New end (America/New_York)" in page.content.decode()
    grant.refresh_from_db()
    assert grant.expires_at == new_end.astimezone(UTC)
    extension = GrantExtension.objects.get(grant=grant)
    assert (extension.old_expires_at, extension.reason, extension.over_maximum) == (
        old_end,
        "migration runs long",
        False,
    )
    assert audit(AccessAction.GRANT_EXTENDED) == [("bob@example.com", str(grant.pk))]
    assert flash(done) == [(messages.SUCCESS, "1 extended")]


def test_extend_past_the_maximum_needs_the_override(bob: Any, grant: Any) -> None:
    client, _ = bob
    far = local(grant.not_before + timedelta(minutes=300))

    refused = confirm(client, "extend_selected", [grant.pk], new_end=far, reason="long one")
    grant.refresh_from_db()
    assert not GrantExtension.objects.exists()
    level, text = flash(refused)[0]
    assert level == messages.ERROR
    assert text.startswith(f"1 skipped: #{grant.pk} That is past Grafana admin's maximum")

    allowed = confirm(
        client, "extend_selected", [grant.pk], new_end=far, reason="approved by CTO", override="on"
    )

    assert flash(allowed)[-1] == (messages.SUCCESS, "1 extended")
    assert GrantExtension.objects.get(grant=grant).over_maximum is True
    assert AuditEvent.objects.get(action=AccessAction.GRANT_EXTENDED).details["over_maximum"]


def test_extend_rejects_bad_dates_and_own_grants(bob: Any, resource: Any) -> None:
    client, user = bob
    own = GrantFactory(request__requester=user, request__resource=resource)

    garbage = confirm(client, "extend_selected", [own.pk], new_end="not a date", reason="x")
    own_grant = confirm(
        client,
        "extend_selected",
        [own.pk],
        new_end=local(own.expires_at + timedelta(minutes=30)),
        reason="x",
    )

    assert "new_end" in garbage.context["form"].errors
    assert flash(own_grant) == [
        (
            messages.ERROR,
            f"1 skipped: #{own.pk} You cannot extend your own grant; ask for an extension instead.",
        )
    ]
    assert not GrantExtension.objects.exists()
    assert not AuditEvent.objects.filter(action=AccessAction.GRANT_EXTENDED).exists()


def test_mark_reviewed_for_break_glass(bob: Any, signed_in: Any, resource: Any) -> None:
    client, _ = bob
    _, olga = signed_in("olga", groups=["oncall"])
    glass = GrantFactory(request__requester=olga, request__resource=resource, is_break_glass=True)
    plain = GrantFactory(request__resource=ResourceFactory(slug="vault"))

    listing = client.get(CHANGELIST + "?needs_review=yes")
    missing_note = confirm(client, "mark_reviewed_selected", [glass.pk], note="")
    done = confirm(
        client, "mark_reviewed_selected", [glass.pk, plain.pk], note="justified: DB outage"
    )

    assert list(listing.context["cl"].result_list) == [glass]
    assert "BREAK-GLASS · needs review" in listing.content.decode()
    assert "note" in missing_note.context["form"].errors
    glass.refresh_from_db()
    assert (glass.reviewed_by.email, glass.review_note) == (
        "bob@example.com",
        "justified: DB outage",
    )
    assert audit(AccessAction.GRANT_REVIEWED) == [("bob@example.com", str(glass.pk))]
    assert flash(done) == [
        (
            messages.WARNING,
            f"1 marked reviewed, 1 skipped: #{plain.pk} Only break-glass grants need a review.",
        )
    ]
    assert client.get(CHANGELIST + "?needs_review=yes").context["cl"].result_count == 0


def test_grant_change_page_buttons(bob: Any, grant: Any) -> None:
    client, _ = bob

    page = client.get(f"{CHANGELIST}{grant.pk}/change/").content.decode()
    done = client.post(f"{CHANGELIST}{grant.pk}/revoke/", {"apply": "yes", "reason": "done"})

    assert f'action="{CHANGELIST}{grant.pk}/revoke/"' in page
    assert f'action="{CHANGELIST}{grant.pk}/extend/"' in page
    assert f"{CHANGELIST}{grant.pk}/review/" not in page  # not break-glass
    assert done["Location"] == f"{CHANGELIST}{grant.pk}/change/"
    grant.refresh_from_db()
    assert grant.state == GrantState.REVOKED
    assert audit(AccessAction.GRANT_REVOKED) == [("bob@example.com", str(grant.pk))]


def test_grants_are_read_only_and_never_deleted(signed_in: Any, grant: Any) -> None:
    root, _ = signed_in("root", groups=["portal-admins"])

    edit = root.post(f"{CHANGELIST}{grant.pk}/change/", {"state": "expired"})
    delete = root.post(f"{CHANGELIST}{grant.pk}/delete/", {"post": "yes"})
    listing = root.get(CHANGELIST)

    assert (edit.status_code, delete.status_code) == (403, 403)
    assert Grant.objects.get(pk=grant.pk).state == GrantState.ACTIVE
    choices = {n for n, _ in listing.context["action_form"].fields["action"].choices}
    assert choices == {"", "revoke_selected", "extend_selected", "mark_reviewed_selected"}


def test_grant_list_says_whether_they_can_get_in_now(bob: Any, resource: Any) -> None:
    client, _ = bob
    now = timezone.now()
    GrantFactory(
        request__resource=resource,
        not_before=now - timedelta(minutes=1),
        expires_at=now + timedelta(minutes=95),
        sync_status=SyncStatus.LIVE,
        live_at=now,
    )
    later = GrantFactory(
        request__resource=ResourceFactory(),
        not_before=now + timedelta(days=1),
        expires_at=now + timedelta(days=1, hours=1),
        state=GrantState.SCHEDULED,
        sync_status=SyncStatus.LIVE,
        live_at=now,
    )

    html = client.get(CHANGELIST).content.decode()
    page = client.get(f"{CHANGELIST}{later.pk}/change/").content.decode()
    assert "can they get in now?" in page.lower() and "Opens " in page

    assert "Allowed now, until " in html
    assert "Opens " in html
    assert html.count("#dcf5e3") == 1  # green once: only the grant Pomerium allows now
    assert "Rule confirmed by Pomerium" in html and "Live in Pomerium" not in html


def test_admin_pages_show_times_in_the_reviewers_zone(bob: Any, resource: Any) -> None:
    client, user = bob
    user.time_zone = "Asia/Kolkata"
    user.save()
    start = timezone.now().replace(hour=12, minute=0, second=0, microsecond=0, tzinfo=UTC)
    grant = GrantFactory(
        request__resource=resource, not_before=start, expires_at=start + timedelta(days=400)
    )

    listing = client.get(CHANGELIST).content.decode()
    change = client.get(f"{CHANGELIST}{grant.pk}/change/").content.decode()

    assert "17:30 IST" in listing  # 12:00 UTC is 17:30 in India, and it says so
    assert "17:30 IST" in change
