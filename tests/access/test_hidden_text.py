"""Hidden and direction-changing characters, class by class (``tests.support.hidden_text``):
refused at input by every form, service and piece of resource configuration, and shown
escaped (``[U+202E]``) on every page when they are already stored or come from the identity
provider."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from apps.access import services
from apps.access.models import AccessLevel, AccessRequest, Resource
from apps.access.states import PolicyViolation
from tests.access.test_admin_requests import CHANGELIST, confirm, select
from tests.access.test_views import post_data
from tests.factories import AccessRequestFactory, GrantFactory, ResourceFactory, UserFactory
from tests.support.hidden_text import CLASS_IDS, CLASSES, spoof

pytestmark = pytest.mark.django_db


def named(char: str) -> str:
    return f"U+{ord(char):04X}"


def assert_revealed(html: str, chars: str) -> None:
    """No character of ``chars`` is in the page raw; each is there as ``[U+....]``."""
    raw = [named(c) for c in chars if c in html]
    assert raw == [], f"shown raw: {raw}"
    for char in chars:
        assert f"[{named(char)}]" in html, named(char)


@pytest.fixture
def grafana() -> Resource:
    return ResourceFactory(slug="grafana", name="Grafana admin", duration_choices=[60, 240])


# --- Refused at input ----------------------------------------------------------------------


@pytest.mark.parametrize("name", CLASS_IDS)
def test_the_request_form_refuses_them_with_a_field_error(
    signed_in: Any, grafana: Resource, name: str
) -> None:
    client, _ = signed_in("alice", groups=["engineering"])
    for char in CLASSES[name]:
        for field in ("justification", "ticket"):
            text = spoof(char) if field == "justification" else f"INC{char}42"
            response = client.post("/requests/new", post_data(**{field: text}))
            assert response.status_code == 200, named(char)
            errors = response.context["form"].errors
            assert list(errors) == [field], (named(char), errors)
            assert named(char) in errors[field][0]
            assert "hidden or direction-changing character" in errors[field][0]
    assert not AccessRequest.objects.exists()


@pytest.mark.parametrize("name", CLASS_IDS)
def test_the_break_glass_form_refuses_them(signed_in: Any, name: str) -> None:
    resource = ResourceFactory(slug="billing", break_glass_groups=["oncall"])
    client, _ = signed_in("dave", groups=["oncall"])
    for char in CLASSES[name]:
        response = client.post(
            f"/break-glass/{resource.slug}", {"duration": "60", "justification": spoof(char)}
        )
        assert response.status_code == 200, named(char)
        assert named(char) in response.context["form"].errors["justification"][0]
    assert not resource.grants.exists()


@pytest.mark.parametrize("name", CLASS_IDS)
def test_the_services_refuse_them_whoever_calls(grafana: Resource, name: str) -> None:
    alice = UserFactory(username="idp|alice", email="alice@example.com")
    bob = UserFactory(username="idp|bob", email="bob@example.com", groups=["approvers"])
    req = AccessRequestFactory(requester=alice, resource=grafana)
    grant = GrantFactory(request__resource=grafana, is_break_glass=True)
    for char in CLASSES[name]:
        calls = [
            lambda c=char: services.submit_request(
                requester=alice, resource=grafana, duration_minutes=60, justification=spoof(c)
            ),
            lambda c=char: services.approve_request(req, approver=bob, note=spoof(c)),
            lambda c=char: services.reject_request(req, approver=bob, reason=spoof(c)),
            lambda c=char: services.revoke_grant(grant, actor=bob, reason=spoof(c)),
            lambda c=char: services.mark_reviewed(grant, reviewer=bob, note=spoof(c)),
        ]
        for call in calls:
            with pytest.raises(PolicyViolation, match=re.escape(named(char))):
                call()
    req.refresh_from_db()
    grant.refresh_from_db()
    assert (req.state, req.approvals.count(), grant.revoked_at, grant.reviewed_at) == (
        "pending",
        0,
        None,
        None,
    )


@pytest.mark.parametrize("name", CLASS_IDS)
def test_the_admin_decision_pages_refuse_them(signed_in: Any, grafana: Resource, name: str) -> None:
    bob, _ = signed_in("bob", groups=["approvers"])
    _, alice = signed_in("alice")
    req = AccessRequestFactory(requester=alice, resource=grafana)
    for char in CLASSES[name]:
        approve = confirm(bob, "approve_selected", [req.pk], note=spoof(char))
        reject = confirm(bob, "reject_selected", [req.pk], reason=spoof(char))
        for page, field in ((approve, "note"), (reject, "reason")):
            assert page.status_code == 200, named(char)
            assert named(char) in page.context["form"].errors[field][0]
    req.refresh_from_db()
    assert (req.state, req.approvals.count()) == ("pending", 0)


@pytest.mark.parametrize("name", CLASS_IDS)
def test_resource_configuration_refuses_them(grafana: Resource, name: str) -> None:
    for char in CLASSES[name]:
        changes = {
            "name": f"Grafana{char}admin",
            "description": spoof(char),
            "approver_groups": [f"sre{char}"],
            "auto_approve_rules": [{"group": f"oncall{char}", "max_minutes": 60}],
            "base_ppl": [{"allow": {"and": [{"email": {"is": f"bob{char}@example.com"}}]}}],
        }
        for field, value in changes.items():
            resource = Resource.objects.get(pk=grafana.pk)
            setattr(resource, field, value)
            with pytest.raises(ValidationError) as caught:
                resource.full_clean()
            assert field in caught.value.message_dict, (field, named(char))
            assert named(char) in caught.value.message_dict[field][0]
        level = AccessLevel(resource=grafana, slug="read", name=f"Read{char}only", rank=5)
        with pytest.raises(ValidationError) as caught:
            level.full_clean()
        assert named(char) in caught.value.message_dict["name"][0]


def test_the_resource_admin_shows_the_refusal_next_to_the_field(signed_in: Any) -> None:
    from tests.access.test_admin_requests import resource_form

    admin_client, _ = signed_in("root", groups=["portal-admins"])
    response = admin_client.post(
        "/admin/access/resource/add/", resource_form(name="Kibana\u202eadmin")
    )
    assert response.status_code == 200
    assert "U+202E RIGHT-TO-LEFT OVERRIDE" in str(response.context["adminform"].form.errors["name"])
    assert not Resource.objects.filter(slug="kibana").exists()


# --- Escaped on display --------------------------------------------------------------------


@pytest.mark.parametrize("name", CLASS_IDS)
def test_stored_and_identity_provider_text_is_shown_escaped_on_every_page(
    as_user: Any, signed_in: Any, grafana: Resource, name: str
) -> None:
    chars = CLASSES[name]
    # The identity provider sends a display name with the characters; a request from before
    # the rule carries them in its justification and ticket.
    alice_client = as_user("idp|alice", "alice@example.com", name=f"Alice {chars} Example")
    assert alice_client.get("/").status_code == 200
    alice = UserFactory(username="idp|alice")
    bob, _ = signed_in("bob", groups=["approvers"])
    req = AccessRequestFactory(
        requester=alice, resource=grafana, justification=spoof(chars), ticket=f"INC{chars}"
    )

    pages = {
        "request page": alice_client.get(f"/requests/{req.pk}"),
        "dashboard": alice_client.get("/"),
        "admin list": bob.get(CHANGELIST),
        "admin change page": bob.get(f"{CHANGELIST}{req.pk}/change/"),
        "approve page": select(bob, "approve_selected", [req.pk]),
        "user admin": signed_in("root", groups=["portal-admins"])[0].get("/admin/accounts/user/"),
    }

    for page_name, response in pages.items():
        assert response.status_code == 200, page_name
        html = response.content.decode()
        if page_name not in ("user admin", "dashboard"):
            assert "Need it for INC-42" in html, page_name
        try:
            assert_revealed(html, chars)
        except AssertionError as exc:
            raise AssertionError(f"{page_name}: {exc}") from None
    assert int(pages["request page"]["Content-Length"]) == len(pages["request page"].content)


@pytest.mark.parametrize("name", CLASS_IDS)
def test_the_access_report_csv_shows_them_escaped(grafana: Resource, name: str) -> None:
    from apps.access import reports

    chars = CLASSES[name]
    grant = GrantFactory(
        request__resource=grafana,
        request__justification=spoof(chars),
        request__ticket=f"INC{chars}",
    )
    auditor = UserFactory(username="idp|carol", is_superuser=True)

    report = reports.run_report(auditor, grafana, via="admin", fmt="csv")
    text = reports.to_csv(report.rows)

    assert [r.grant_id for r in report.rows] == [grant.pk]
    assert_revealed(text, chars)


def test_the_bootstrap_file_refuses_them_in_one_line(tmp_path: Any) -> None:
    from django.core.management import CommandError, call_command

    path = tmp_path / "resources.json"
    path.write_text(
        '{"resources": [{"slug": "wiki", "name": "Wiki\\u202eadmin"}]}', encoding="utf-8"
    )
    with pytest.raises(CommandError) as info:
        call_command("bootstrap", str(path))
    assert info.value.returncode == 2
    assert "U+202E RIGHT-TO-LEFT OVERRIDE" in str(info.value)
    assert "\n" not in str(info.value)
    assert not Resource.objects.filter(slug="wiki").exists()
