"""The admin with access levels: the approver lowers a level in the approve action, and
level edits on the resource page are audited."""

from __future__ import annotations

from typing import Any

import pytest

from apps.access.actions import AccessAction
from apps.access.models import AccessLevel, Grant
from apps.audit.models import AuditEvent
from tests.access.test_admin_requests import confirm, resource_form
from tests.factories import AccessLevelFactory, AccessRequestFactory, ResourceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(signed_in: Any) -> dict[str, Any]:
    return {
        "alice": signed_in("alice", groups=["engineering"]),
        "bob": signed_in("bob", groups=["approvers"]),
        "carol": signed_in("carol", groups=["compliance"]),
    }


@pytest.fixture
def grafana() -> Any:
    resource = ResourceFactory(slug="grafana", name="Grafana admin")
    AccessLevelFactory(
        resource=resource,
        slug="read-only",
        rank=1,
        criteria=[{"http_method": {"in": ["GET"]}}],
    )
    AccessLevelFactory(resource=resource, slug="full", rank=2)
    return resource


def test_the_approve_action_lowers_the_level_never_raises_it(
    people: dict[str, Any], grafana: Any
) -> None:
    bob, _ = people["bob"]
    _, alice = people["alice"]
    full, read = grafana.levels.get(slug="full"), grafana.levels.get(slug="read-only")
    asked_full = AccessRequestFactory(requester=alice, resource=grafana, level=full)
    carol = people["carol"][1]
    asked_read = AccessRequestFactory(requester=carol, resource=grafana, level=read)

    confirm(bob, "approve_selected", [asked_full.pk, asked_read.pk], level="read-only", note="")

    assert Grant.objects.get(request=asked_full).level == read
    assert Grant.objects.get(request=asked_full).criteria == [{"http_method": {"in": ["GET"]}}]
    assert Grant.objects.get(request=asked_read).level == read
    approved = AuditEvent.objects.filter(action=AccessAction.REQUEST_APPROVED).order_by("pk")
    assert [(e.details["level"], e.details.get("level_asked")) for e in approved] == [
        ("read-only", "full"),
        ("read-only", None),
    ]


def test_an_unknown_level_in_the_approve_action_approves_nothing(
    people: dict[str, Any], grafana: Any
) -> None:
    bob, _ = people["bob"]
    _, alice = people["alice"]
    req = AccessRequestFactory(requester=alice, resource=grafana, level=grafana.levels.last())
    confirm(bob, "approve_selected", [req.pk], level="nope", note="")
    assert not Grant.objects.exists()
    assert not AuditEvent.objects.filter(action=AccessAction.REQUEST_APPROVED).exists()


def test_level_edits_on_the_resource_page_are_audited(signed_in: Any, grafana: Any) -> None:
    root, _ = signed_in("root", groups=["portal-admins"])
    levels = list(grafana.levels.all())
    form = resource_form(grafana, name=grafana.name, slug=grafana.slug, description="")
    form |= {
        "levels-TOTAL_FORMS": str(len(levels)),
        "levels-INITIAL_FORMS": str(len(levels)),
    }
    for i, level in enumerate(levels):
        form |= {
            f"levels-{i}-id": str(level.pk),
            f"levels-{i}-resource": str(grafana.pk),
            f"levels-{i}-rank": str(level.rank),
            f"levels-{i}-slug": level.slug,
            f"levels-{i}-name": level.name,
            f"levels-{i}-criteria": '[{"http_method": {"in": ["GET", "HEAD"]}}]'
            if level.slug == "read-only"
            else "[]",
            f"levels-{i}-max_duration_minutes": "",
            f"levels-{i}-approvals_required": "",
            f"levels-{i}-auto_approve_rules": "",
        }
    response = root.post(f"/admin/access/resource/{grafana.pk}/change/", form)

    assert response.status_code == 302
    assert AccessLevel.objects.get(slug="read-only").criteria == [
        {"http_method": {"in": ["GET", "HEAD"]}}
    ]
    entry = AuditEvent.objects.filter(
        action=AccessAction.RESOURCE_CHANGED, details__changed=["levels"]
    ).get()
    assert [lv["slug"] for lv in entry.details["levels"]] == ["read-only", "full"]
