"""Issue 27, gap 7: an IdP group name of any length signs in, on PostgreSQL.

``"idp:" + name`` overflowed Django's 150-character ``Group.name``: on PostgreSQL every
request of such a person was a 500. Now a long name maps to a bounded, unique, stable
Django name (its SHA-256 in it), the original is kept (``ClaimGroup``), and everything
that matches groups (roles, approver and requester groups, who is told) reads the
original. Tested through the real middleware, with names of 149, 150 and 400 characters.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group

from apps.access.models import Resource
from apps.accounts.models import ClaimGroup, User
from apps.accounts.roles import GROUP_NAME_MAX
from apps.notifications import audience
from tests.factories import ResourceFactory

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def long_name(length: int, tail: str = "") -> str:
    base = "Org/Engineering/Platform/Databases/" + "é" * 5 + "/"
    name = (base * (length // len(base) + 1))[: length - len(tail)] + tail
    assert len(name) == length
    return name


@pytest.mark.parametrize("length", [145, 146, 149, 150, 400])
def test_a_long_group_signs_in_and_keeps_its_rights(as_user: Any, length: int) -> None:
    name = long_name(length)
    resource: Resource = ResourceFactory(
        slug="db", name="Databases", approver_groups=[name], requester_groups=[name]
    )
    client = as_user("idp|lena", "lena@example.com", groups=[name, "approvers"])
    assert client.get("/").status_code == 200
    user = User.objects.get(username="idp|lena")
    assert user.group_names() == {name, "approvers"}
    stored = [g.name for g in user.groups.filter(name__startswith="idp:")]
    assert all(len(g) <= GROUP_NAME_MAX for g in stored)
    # Approver of the resource (matched in SQL), may request it, is told about it.
    assert list(Resource.objects.restrict(user, "change")) == [resource]
    assert [r["slug"] for r in client.get("/api/v1/resources").json()] == ["db"]
    assert audience.approvers(resource) == [user]
    # Stable: the next sign-in (another session) finds the same group, makes no new one.
    groups = Group.objects.count()
    again = as_user("idp|lena", "lena@example.com", groups=[name, "approvers"], name="Lena")
    assert again.get("/").status_code == 200
    assert Group.objects.count() == groups
    # The original is kept for display.
    if length > 145:
        assert ClaimGroup.objects.get().name == name
    root = as_user("idp|root", "root@example.com", groups=["portal-admins"])
    page = root.get(f"/admin/accounts/user/{user.pk}/change/")
    assert page.status_code == 200 and name in page.content.decode()


def test_two_long_names_with_one_prefix_are_two_groups(as_user: Any) -> None:
    readers, admins = long_name(400, "-readers"), long_name(400, "-admins")
    assert readers[:150] == admins[:150]  # what the assertion used to cut them to
    ResourceFactory(slug="db", approver_groups=[admins])
    reader = as_user("idp|rita", "rita@example.com", groups=[readers, "approvers"])
    admin = as_user("idp|adam", "adam@example.com", groups=[admins, "approvers"])
    assert reader.get("/").status_code == admin.get("/").status_code == 200
    rita, adam = User.objects.get(username="idp|rita"), User.objects.get(username="idp|adam")
    assert rita.group_names() == {readers, "approvers"}
    assert list(Resource.objects.restrict(rita, "change")) == []
    assert [r.slug for r in Resource.objects.restrict(adam, "change")] == ["db"]
    assert len({g.pk for u in (rita, adam) for g in u.groups.filter(claim__isnull=False)}) == 2


def test_a_group_postgresql_cannot_store_is_left_out(as_user: Any) -> None:
    client = as_user("idp|nul", "nul@example.com", groups=["ok", "bad\x00name", "\ud800"])
    assert client.get("/").status_code == 200
    assert User.objects.get(username="idp|nul").group_names() == {"ok"}
