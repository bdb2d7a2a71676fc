"""Issue 27, gap 3: under a quorum, a later approver never undoes an earlier one's limits.

The red team: Bob approved for 30 minutes, Erin for 120, and the grant was 120; Bob lowered
the level to read-only, Erin named "full", and the grant was full; the trail said Bob
approved what was granted. Now each approval keeps its own conditions, the grant takes the
most restrictive of the approvals that count, the trail says who set what, and the approve
page shows what earlier approvers set. The admin and the API decide alike (one service).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from apps.access import services
from apps.access.actions import AccessAction
from apps.access.models import AccessLevel, AccessRequest, Approval, Grant, Resource
from apps.accounts.models import User
from apps.audit.models import AuditEvent
from tests.factories import ResourceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def hr() -> Resource:
    resource = ResourceFactory(
        slug="hr", name="HR records", approvals_required=2, duration_choices=[30, 60, 120]
    )
    AccessLevel.objects.create(resource=resource, slug="read-only", name="Read-only", rank=10)
    AccessLevel.objects.create(resource=resource, slug="full", name="Full", rank=20)
    return resource


@pytest.fixture
def people(signed_in: Any) -> dict[str, tuple[Any, User]]:
    return {
        name: signed_in(name, groups=groups)
        for name, groups in (
            ("alice", ["engineering"]),
            ("bob", ["approvers"]),
            ("erin", ["approvers"]),
            ("frank", ["approvers"]),
        )
    }


def ask(people: dict[str, tuple[Any, User]], hr: Resource) -> AccessRequest:
    return services.submit_request(
        requester=people["alice"][1],
        resource=hr,
        duration_minutes=120,
        justification="quarterly payroll audit INC-5",
        level=hr.levels.get(slug="full"),
    )


def admin_approve(client: Any, req: AccessRequest, **fields: str) -> Any:
    response = client.post(
        f"/admin/access/accessrequest/{req.pk}/approve/", {"apply": "yes", "note": "", **fields}
    )
    assert response.status_code == 302, response.content[:300]
    return response


def api_approve(client: Any, req: AccessRequest, **body: Any) -> Any:
    response = client.post(
        f"/api/v1/requests/{req.pk}/approve", body, content_type="application/json"
    )
    assert response.status_code == 200, response.content
    return response.json()


def window(grant: Grant) -> tuple[float, str]:
    grant.refresh_from_db()
    minutes = (grant.expires_at - grant.not_before).total_seconds() / 60
    return minutes, grant.level.slug if grant.level else ""


def entry(action: str) -> AuditEvent:
    return AuditEvent.objects.filter(action=action).latest("seq")


def test_bob_limits_in_the_admin_erin_asks_for_more_in_the_api(
    people: dict[str, tuple[Any, User]], hr: Resource
) -> None:
    req = ask(people, hr)
    admin_approve(people["bob"][0], req, duration_minutes="30", level="read-only")
    recorded = entry(AccessAction.REQUEST_APPROVAL_RECORDED)
    assert recorded.actor_label == "bob@example.com"
    assert recorded.details["conditions"] == {"duration_minutes": 30, "level": "read-only"}
    body = api_approve(people["erin"][0], req, duration_minutes=120, level="full")
    assert body["grant"]["level"] == "read-only"
    grant = Grant.objects.get(request=req)
    assert window(grant) == (30, "read-only")
    approved = entry(AccessAction.REQUEST_APPROVED)
    assert approved.actor_label == "erin@example.com"
    assert approved.details["duration_minutes"] == 30
    assert approved.details["level"] == "read-only"
    assert approved.details["level_asked"] == "full"
    # Erin named what was asked: the trail says she set nothing stricter.
    assert approved.details["conditions"] == {"duration_minutes": None, "level": None}
    assert approved.details["conditions_by_approver"] == [
        {"approver": "bob@example.com", "duration_minutes": 30, "level": "read-only"},
        {"approver": "erin@example.com", "duration_minutes": None, "level": None},
    ]
    activated = entry(AccessAction.GRANT_ACTIVATED)
    assert activated.details["level"] == "read-only"
    rows = Approval.objects.filter(request=req).order_by("pk")
    assert [(a.approver.email, a.duration_minutes, a.level and a.level.slug) for a in rows] == [
        ("bob@example.com", 30, "read-only"),
        ("erin@example.com", None, None),
    ]


def test_each_limit_holds_whoever_set_it_and_in_whichever_order(
    people: dict[str, tuple[Any, User]], hr: Resource
) -> None:
    req = ask(people, hr)
    # Bob (API) names the full level but only 60 minutes; Erin (admin) lowers the level only.
    api_approve(people["bob"][0], req, duration_minutes=60, level="full")
    admin_approve(people["erin"][0], req, level="read-only")
    assert window(Grant.objects.get(request=req)) == (60, "read-only")
    assert entry(AccessAction.REQUEST_APPROVED).details["conditions_by_approver"] == [
        {"approver": "bob@example.com", "duration_minutes": 60, "level": None},
        {"approver": "erin@example.com", "duration_minutes": None, "level": "read-only"},
    ]


def test_the_approve_page_shows_what_earlier_approvers_set(
    people: dict[str, tuple[Any, User]], hr: Resource
) -> None:
    req = ask(people, hr)
    api_approve(people["bob"][0], req, duration_minutes=30, level="read-only")
    page = people["erin"][0].post(f"/admin/access/accessrequest/{req.pk}/approve/")
    assert page.status_code == 200
    shown = re.compile(
        r"bob &lt;bob@example.com&gt;, [^<]*\s*"
        r'<span class="brief-conditions">\(set: at most 30 min, level Read-only\)</span>'
    )
    assert shown.search(page.content.decode())
    # The changelist's batch page says the same, at one query for the whole batch.
    batch = people["erin"][0].post(
        "/admin/access/accessrequest/",
        {"action": "approve_selected", "_selected_action": [str(req.pk)]},
    )
    assert shown.search(batch.content.decode())
    # Nothing was decided by looking.
    assert AccessRequest.objects.get(pk=req.pk).state == "pending"


def test_an_approval_that_no_longer_counts_constrains_nothing(
    people: dict[str, tuple[Any, User]], hr: Resource
) -> None:
    req = ask(people, hr)
    api_approve(people["bob"][0], req, duration_minutes=30)
    # Bob leaves the approver groups: his approval is no longer part of the decision.
    bob = people["bob"][1]
    bob.groups.clear()
    api_approve(people["erin"][0], req)
    assert AccessRequest.objects.get(pk=req.pk).state == "pending"
    recorded = entry(AccessAction.REQUEST_APPROVAL_RECORDED)
    assert recorded.details["not_counted"] == [
        {"approver": "bob@example.com", "reason": "no longer an approver of the resource"}
    ]
    api_approve(people["frank"][0], req)
    assert window(Grant.objects.get(request=req)) == (120, "full")
    assert [
        a["approver"]
        for a in entry(AccessAction.REQUEST_APPROVED).details["conditions_by_approver"]
    ] == [
        "erin@example.com",
        "frank@example.com",
    ]


def test_the_pending_request_shows_the_strictest_so_far(
    people: dict[str, tuple[Any, User]], hr: Resource
) -> None:
    req = ask(people, hr)
    hr.approvals_required = 3
    hr.save()
    api_approve(people["bob"][0], req, duration_minutes=30)
    api_approve(people["erin"][0], req, duration_minutes=60, level="read-only")
    req.refresh_from_db()
    assert (req.approved_duration_minutes, req.approved_level.slug) == (30, "read-only")
    shown = people["frank"][0].get(f"/api/v1/requests/{req.pk}").json()
    assert (shown["approved_duration_minutes"], shown["approved_level"]) == (30, "read-only")


def test_the_migration_gives_pending_approvals_the_conditions_their_request_carried(
    people: dict[str, tuple[Any, User]], hr: Resource
) -> None:
    import importlib

    from django.apps import apps

    migration = importlib.import_module("apps.access.migrations.0007_approval_conditions")
    req = ask(people, hr)
    api_approve(people["bob"][0], req, duration_minutes=30, level="read-only")
    decided = services.submit_request(
        requester=people["frank"][1],
        resource=hr,
        duration_minutes=60,
        justification="quarterly payroll audit INC-6",
    )
    services.reject_request(decided, approver=people["bob"][1], reason="not now")
    # As a request stood before the migration: one pair on the request, none per approval.
    Approval.objects.update(duration_minutes=None, level=None)
    AccessRequest.objects.filter(pk=decided.pk).update(approved_duration_minutes=45)
    migration.conditions_of_pending_requests(apps, None)
    (approval,) = Approval.objects.all()
    assert (approval.duration_minutes, approval.level.slug) == (30, "read-only")
    api_approve(people["erin"][0], req)
    assert window(Grant.objects.get(request=req)) == (30, "read-only")
