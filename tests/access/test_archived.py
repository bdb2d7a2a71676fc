"""Issue 27, gap 5: an archived resource gives no more access.

The red team archived a resource, then approved requests filed before the archive: one
extended a grant, one created a new 4-hour grant, and Pomerium allowed it. Now archiving
(the admin's action, its change form, ``bootstrap``) expires the resource's open requests
in the same transaction, audited; and every path that would give access (decide, approve,
extend, break-glass) refuses an archived resource, through one check.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from apps.access import services
from apps.access.actions import AccessAction
from apps.access.models import AccessRequest, Grant, GrantExtension, Resource
from apps.access.states import RequestKind, RequestState
from apps.accounts.models import User
from apps.audit.models import AuditEvent
from tests.factories import ResourceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(signed_in: Any) -> dict[str, tuple[Any, User]]:
    return {
        name: signed_in(name, groups=groups)
        for name, groups in (
            ("alice", ["engineering"]),
            ("oscar", ["engineering", "oncall"]),
            ("bob", ["approvers"]),
            ("root", ["portal-admins"]),
        )
    }


@pytest.fixture
def grafana() -> Resource:
    return ResourceFactory(
        slug="grafana",
        name="Grafana",
        duration_choices=[60, 240],
        break_glass_groups=["oncall"],
    )


def api(client: Any, path: str, body: Any = None) -> Any:
    return client.post(f"/api/v1{path}", json.dumps(body or {}), content_type="application/json")


@pytest.fixture
def before_archive(people: dict[str, tuple[Any, User]], grafana: Resource) -> dict[str, Any]:
    """Alice's new request and Oscar's extension request, both pending; Oscar's live grant."""
    alice, oscar, bob = people["alice"][0], people["oscar"][0], people["bob"][1]
    first = services.submit_request(
        requester=people["oscar"][1],
        resource=grafana,
        duration_minutes=60,
        justification="on call this week",
    )
    grant = services.approve_request(first, approver=bob)
    assert grant is not None
    new = api(
        alice,
        "/requests",
        {
            "resource": "grafana",
            "duration_minutes": 240,
            "justification": "dashboards for the audit",
        },
    )
    extension = api(
        oscar,
        "/requests",
        {"resource": "grafana", "duration_minutes": 60, "justification": "the incident goes on"},
    )
    assert (new.status_code, extension.status_code) == (201, 201)
    assert extension.json()["kind"] == RequestKind.EXTENSION
    return {"new": new.json()["id"], "extension": extension.json()["id"], "grant": grant}


def archive_in_admin(root: Any, grafana: Resource) -> None:
    response = root.post(
        "/admin/access/resource/",
        {"action": "archive_selected", "_selected_action": [str(grafana.pk)]},
    )
    assert response.status_code == 302


def test_archiving_expires_open_requests_and_approving_them_grants_nothing(
    people: dict[str, tuple[Any, User]], grafana: Resource, before_archive: dict[str, Any]
) -> None:
    head = AuditEvent.objects.order_by("-seq").first()
    assert head is not None
    archive_in_admin(people["root"][0], grafana)
    ids = (before_archive["new"], before_archive["extension"])
    assert set(AccessRequest.objects.filter(pk__in=ids).values_list("state", flat=True)) == {
        RequestState.EXPIRED
    }
    entries = list(AuditEvent.objects.in_chain_order().filter(seq__gt=head.seq))
    assert [(e.action, e.actor_label) for e in entries] == [
        (AccessAction.RESOURCE_CHANGED, "root@example.com"),
        (AccessAction.REQUEST_EXPIRED, "root@example.com"),
        (AccessAction.REQUEST_EXPIRED, "root@example.com"),
    ]
    # One transaction: one unit of work, one request id.
    assert len({e.request_id for e in entries}) == 1
    assert {e.details["reason"] for e in entries[1:]} == {"resource archived"}
    # The red team's next step: approve them. Nothing is granted or extended.
    grant = before_archive["grant"]
    old_end = Grant.objects.get(pk=grant.pk).expires_at
    for pk in ids:
        answer = api(people["bob"][0], f"/requests/{pk}/approve")
        assert answer.status_code == 409, answer.content
    assert Grant.objects.count() == 1
    assert Grant.objects.get(pk=grant.pk).expires_at == old_end
    assert not GrantExtension.objects.exists()


def test_a_request_that_escaped_the_archive_cannot_be_decided_and_expires_at_the_next_tick(
    people: dict[str, tuple[Any, User]], grafana: Resource, before_archive: dict[str, Any]
) -> None:
    # Filed in the instant the archive committed (the form had read the resource before).
    Resource.objects.filter(pk=grafana.pk).update(is_active=False)
    bob = people["bob"][0]
    before = AuditEvent.objects.count()
    for action, body in (("approve", {}), ("reject", {"reason": "no"})):
        answer = api(bob, f"/requests/{before_archive['new']}/{action}", body)
        assert answer.status_code == 422, answer.content
        assert "Grafana is archived: its requests are no longer decided." in answer.content.decode()
    admin = bob.post(
        f"/admin/access/accessrequest/{before_archive['new']}/approve/", {"apply": "yes"}
    )
    assert admin.status_code == 302
    assert AuditEvent.objects.count() == before
    assert AccessRequest.objects.get(pk=before_archive["new"]).state == RequestState.PENDING
    assert services.expire_due()["requests_expired"] == 2
    expired = AuditEvent.objects.filter(action=AccessAction.REQUEST_EXPIRED)
    assert {(e.actor_label, e.details["reason"]) for e in expired} == {
        ("system", "resource archived")
    }


def test_extend_and_break_glass_refuse_an_archived_resource(
    people: dict[str, tuple[Any, User]], grafana: Resource, before_archive: dict[str, Any]
) -> None:
    archive_in_admin(people["root"][0], grafana)
    grant = before_archive["grant"]
    new_end = (grant.expires_at + timedelta(minutes=30)).isoformat()
    extend = api(
        people["bob"][0], f"/grants/{grant.pk}/extend", {"expires_at": new_end, "reason": "x"}
    )
    assert extend.status_code == 422
    assert "Grafana is archived: its grants are not extended." in extend.content.decode()
    # The live grant runs its course; break-glass on top is refused.
    services.revoke_grant(Grant.objects.get(pk=grant.pk), actor=people["bob"][1], reason="done")
    page = people["oscar"][0].post(
        "/break-glass/grafana", {"duration": "60", "justification": "prod is down, paging"}
    )
    assert page.status_code == 404  # archived resources offer no break-glass page
    with pytest.raises(services.PolicyViolation, match="Grafana is archived: it takes no break"):
        services.break_glass(
            user=people["oscar"][1],
            resource=grafana,
            duration_minutes=60,
            justification="prod is down, paging",
        )
    assert Grant.objects.count() == 1


def test_the_change_form_and_bootstrap_archive_the_same_way(
    people: dict[str, tuple[Any, User]], grafana: Resource, tmp_path: Path
) -> None:
    for who in ("alice", "oscar"):
        services.submit_request(
            requester=people[who][1],
            resource=grafana,
            duration_minutes=60,
            justification="dashboards for the audit",
        )
    (tmp_path / "resources.json").write_text(
        json.dumps({"resources": [{"slug": "grafana", "is_active": False}]})
    )
    call_command("bootstrap", str(tmp_path / "resources.json"))
    assert set(AccessRequest.objects.values_list("state", flat=True)) == {RequestState.EXPIRED}
    assert (
        AuditEvent.objects.filter(action=AccessAction.REQUEST_EXPIRED, actor_label="system").count()
        == 2
    )
    assert not Resource.objects.get(pk=grafana.pk).is_active
    # Submitting, through the API, is refused by the same check.
    refused = api(
        people["alice"][0],
        "/requests",
        {"resource": "grafana", "duration_minutes": 60, "justification": "dashboards, again"},
    )
    assert refused.status_code == 422
    assert "Grafana is archived: it takes no requests." in refused.content.decode()
