"""A user's group names are read once per instance and forgotten when the groups change."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts.models import User
from apps.accounts.roles import claim_group_name

pytestmark = pytest.mark.django_db


def make_user(*groups: str) -> User:
    user = User.objects.create(username="idp|gina", email="gina@example.com")
    user.groups.set([Group.objects.get_or_create(name=claim_group_name(g))[0] for g in groups])
    return user


def test_names_are_read_once_per_instance() -> None:
    user = make_user("eng", "sre")
    with CaptureQueriesContext(connection) as queries:
        assert user.group_names() == {"eng", "sre"}
        assert user.group_names() == {"eng", "sre"}
        assert user.group_names() == {"eng", "sre"}
    assert len(queries) == 1


def test_callers_cannot_change_the_cached_names() -> None:
    user = make_user("eng")
    user.group_names().add("admins")
    assert user.group_names() == {"eng"}


@pytest.mark.parametrize("change", ["add", "remove", "set", "clear"])
def test_a_change_of_the_instances_groups_is_seen(change: str) -> None:
    user = make_user("eng", "sre")
    assert user.group_names() == {"eng", "sre"}
    dba = Group.objects.create(name=claim_group_name("dba"))
    sre = Group.objects.get(name=claim_group_name("sre"))
    expected = {
        "add": {"eng", "sre", "dba"},
        "remove": {"eng"},
        "set": {"dba"},
        "clear": set(),
    }[change]
    if change == "add":
        user.groups.add(dba)
    elif change == "remove":
        user.groups.remove(sre)
    elif change == "set":
        user.groups.set([dba])
    else:
        user.groups.clear()
    assert user.group_names() == expected


def test_refresh_from_db_forgets_names_changed_through_another_instance() -> None:
    user = make_user("eng")
    assert user.group_names() == {"eng"}
    other = User.objects.get(pk=user.pk)
    other.groups.add(Group.objects.create(name=claim_group_name("dba")))
    assert user.group_names() == {"eng"}  # this instance's request still sees its own read
    user.refresh_from_db()
    assert user.group_names() == {"eng", "dba"}
