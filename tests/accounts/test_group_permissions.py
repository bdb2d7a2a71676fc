"""Issue 27, gap 10: a role's rights come from the code; group permission changes are audited.

The red team, a superuser, added model permissions to "jitportal: approvers" in Admin →
Groups: approvers then got editable Resource forms (``base_ppl`` included), and nothing was
audited. Now the groups are read-only in the admin, a permission attached to a role group
by any other means grants nothing, and every change to any group's permissions is audited:
by the service that keeps role groups equal to the code, or by the backstop that catches
ORM writes made elsewhere.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission

from apps.access.models import Resource
from apps.accounts.roles import ROLE_GROUPS
from apps.audit.models import AuditEvent
from tests.factories import ResourceFactory

pytestmark = pytest.mark.django_db

CHANGED = "group.permissions_changed"


def entries() -> list[dict[str, Any]]:
    return [e.details for e in AuditEvent.objects.filter(action=CHANGED).order_by("seq")]


def change_resource() -> Permission:
    return Permission.objects.get(content_type__app_label="access", codename="change_resource")


def test_groups_are_read_only_in_the_admin(signed_in: Any) -> None:
    root, _ = signed_in("root", groups=["portal-admins"])
    signed_in("bob", groups=["approvers", "sre"])
    approvers = Group.objects.get(name=ROLE_GROUPS["approver"])
    before = set(approvers.permissions.values_list("pk", flat=True))
    listing = root.get("/admin/auth/group/")
    assert listing.status_code == 200
    assert "idp:sre" in listing.content.decode()
    page = root.get(f"/admin/auth/group/{approvers.pk}/change/")
    assert page.status_code == 200
    assert "rights from the code" in page.content.decode()
    assert 'name="_save"' not in page.content.decode()
    # What the red team posted: refused, nothing changed, nothing to audit.
    posted = root.post(
        f"/admin/auth/group/{approvers.pk}/change/",
        {"name": approvers.name, "permissions": [*before, change_resource().pk]},
    )
    assert posted.status_code == 403
    assert set(approvers.permissions.values_list("pk", flat=True)) == before
    assert root.get("/admin/auth/group/add/").status_code == 403
    assert (
        root.post(f"/admin/auth/group/{approvers.pk}/delete/", {"post": "yes"}).status_code == 403
    )
    assert Group.objects.filter(pk=approvers.pk).exists()


def test_a_permission_attached_by_other_means_grants_nothing_and_is_audited(
    signed_in: Any,
) -> None:
    bob_client, _ = signed_in("bob", groups=["approvers"])
    resource: Resource = ResourceFactory(slug="grafana", base_ppl=[])
    approvers = Group.objects.get(name=ROLE_GROUPS["approver"])
    # The role group got the code's rights at its first use (Bob's sign-in), audited.
    (first,) = entries()
    assert (first["group"], first["removed"], first["via"]) == (approvers.name, [], "role sync")
    assert "access.decide_accessrequest" in first["added"]
    # The shell, a migration, another admin: the ORM writes the row.
    approvers.permissions.add(change_resource())
    assert entries()[1:] == [
        {
            "group": "jitportal: approvers",
            "added": ["access.change_resource"],
            "removed": [],
            "via": "outside the portal's services",
        }
    ]
    # Bob's resource page stays read-only; a posted edit of the base rules is refused.
    page = bob_client.get(f"/admin/access/resource/{resource.pk}/change/")
    assert page.status_code == 200
    assert 'name="base_ppl"' not in page.content.decode()
    posted = bob_client.post(
        f"/admin/access/resource/{resource.pk}/change/",
        {"name": resource.name, "slug": resource.slug, "base_ppl": '[{"allow": {"or": []}}]'},
    )
    assert posted.status_code == 403
    assert Resource.objects.get(pk=resource.pk).base_ppl == []
    # The next role sync puts the code's rights back, audited as such.
    signed_in("erin", groups=["approvers"])
    assert entries()[-1] == {
        "group": "jitportal: approvers",
        "added": [],
        "removed": ["access.change_resource"],
        "via": "role sync",
    }
    assert not approvers.permissions.filter(pk=change_resource().pk).exists()


def test_every_orm_path_to_a_groups_permissions_is_audited(db: Any) -> None:
    sre = Group.objects.create(name="idp:sre")
    perm = change_resource()
    other = Permission.objects.get(content_type__app_label="access", codename="view_resource")
    perm.group_set.add(sre)  # the reverse side
    sre.permissions.set([perm, other])  # adds one
    sre.permissions.remove(perm)
    sre.permissions.clear()
    assert [(d["group"], d["added"], d["removed"]) for d in entries()] == [
        ("idp:sre", ["access.change_resource"], []),
        ("idp:sre", ["access.view_resource"], []),
        ("idp:sre", [], ["access.change_resource"]),
        ("idp:sre", [], ["access.view_resource"]),
    ]


def _django_answer(user: Any) -> set[str]:
    """ModelBackend's own path: the role permission query built and compiled by the ORM."""
    from django.contrib.auth.backends import ModelBackend

    from apps.accounts.backends import PomeriumAssertionBackend

    fresh = type(user).objects.get(pk=user.pk)
    backend = PomeriumAssertionBackend()
    return ModelBackend.get_group_permissions(backend, fresh)


def test_the_compiled_permission_query_answers_as_the_orm_does(
    signed_in: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The backend runs the role permission query's SQL compiled once (apps/accounts/
    backends.py); for every kind of person it grants exactly what the ORM's query grants."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from apps.accounts import roles
    from apps.accounts.backends import PomeriumAssertionBackend

    _, approver = signed_in("ann", groups=["approvers"])
    _, auditor = signed_in("aud", groups=["compliance"])
    _, both = signed_in("bea", groups=["approvers", "compliance", "sre"])
    _, nobody = signed_in("nic", groups=["sre"])
    # A permission attached by hand to a role group and to a claim group: grants nothing.
    approvers = Group.objects.get(name=ROLE_GROUPS["approver"])
    approvers.permissions.add(change_resource())
    Group.objects.get(name="idp:sre").permissions.add(change_resource())
    # A right the code gives that the role group lacks in the database: not granted.
    approvers.permissions.remove(
        Permission.objects.get(content_type__app_label="access", codename="extend_grant")
    )
    backend = PomeriumAssertionBackend()
    for person in (approver, auditor, both, nobody):
        fresh = type(person).objects.get(pk=person.pk)
        with CaptureQueriesContext(connection) as queries:
            granted = backend.get_group_permissions(fresh)
            assert backend.get_group_permissions(fresh) is granted  # kept for the request
        assert len(queries) == 1
        assert granted == _django_answer(person), person.username
    assert "access.decide_accessrequest" in backend.get_group_permissions(approver)
    assert "access.extend_grant" not in backend.get_group_permissions(approver)
    assert "access.change_resource" not in backend.get_group_permissions(both)
    assert backend.get_group_permissions(nobody) == set()
    # Rights the code changes (a deployment widening a role) compile a new query.
    widened = (*roles.ROLE_PERMISSIONS[roles.APPROVER], "access.change_resource")
    monkeypatch.setitem(roles.ROLE_PERMISSIONS, roles.APPROVER, widened)
    fresh = type(approver).objects.get(pk=approver.pk)
    assert "access.change_resource" in backend.get_group_permissions(fresh)
    assert backend.get_group_permissions(fresh) == _django_answer(approver)
    # An inactive person and an object-level question: nothing, as Django's backend says.
    fresh.is_active = False
    assert backend.get_group_permissions(fresh) == set()
    assert backend.get_group_permissions(approver, obj=approvers) == set()
