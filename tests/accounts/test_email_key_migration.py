"""accounts.0002: existing rows get their email key; look-alikes and claim groups defused."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.contrib.auth.models import Group

from apps.accounts.assertion import Identity
from apps.accounts.models import User
from apps.accounts.services import IdentityConflict, sync_user

pytestmark = pytest.mark.django_db

migration = importlib.import_module("apps.accounts.migrations.0002_email_key")


def test_existing_rows_get_keys_and_the_oldest_keeps_a_shared_address() -> None:
    first = User.objects.create(username="idp|a", email="AppA@Example.Test", claims_digest="x")
    twin = User.objects.create(username="idp|b", email="appa@example.test", claims_digest="y")
    other = User.objects.create(username="idp|c", email="carol@example.com", claims_digest="z")
    role = Group.objects.create(name="jitportal: auditors")
    claim = Group.objects.create(name="engineering")
    first.groups.set([role, claim])

    migration.forwards(apps, None)

    keys = dict(User.objects.values_list("username", "email_key"))
    assert keys == {"idp|a": "appa@example.test", "idp|b": None, "idp|c": "carol@example.com"}
    # Everyone's groups and roles are derived afresh from their next assertion.
    assert set(User.objects.values_list("claims_digest", flat=True)) == {""}
    assert set(Group.objects.values_list("name", flat=True)) == {
        "jitportal: auditors",
        "idp:engineering",
    }
    # The look-alike is refused at its next sign-in until an admin re-links or retires it.
    with pytest.raises(IdentityConflict):
        sync_user(Identity(sub="idp|b", email="appa@example.test", name="", groups=()))
    assert User.objects.get(pk=twin.pk).email_key is None
    assert sync_user(Identity(sub="idp|c", email="carol@example.com", name="", groups=())) == other
