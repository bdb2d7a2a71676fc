"""Who exports the audit trail and who sees the access reports: ``accounts.roles``, the one
home of both rules (the audit pages, the admin and the API ask it)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from apps.accounts.roles import APPROVER, AUDITOR, may_export, may_see_reports, role_group
from apps.audit import views as audit_views
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def person(email: str, *roles: str) -> Any:
    user = UserFactory(email=email, email_key=email)
    user.groups.add(*(role_group(r) for r in roles))
    return type(user).objects.get(pk=user.pk)  # a fresh instance: no cached permissions


def doors(user: Any) -> tuple[bool, bool, bool]:
    return (
        may_export(user),
        may_see_reports(SimpleNamespace(user=user)),
        audit_views.may_export(user),
    )


@pytest.fixture(autouse=True)
def auditor_emails(settings: Any) -> None:
    settings.PORTAL_AUDITOR_EMAILS = ["ada@example.com"]


def test_the_role_and_the_permission_both_count() -> None:
    # The role from the settings and the role group's permissions: both doors open.
    assert doors(person("ada@example.com", AUDITOR)) == (True, True, True)
    # The permissions without the role (the settings no longer name her).
    assert doors(person("bea@example.com", AUDITOR)) == (False, False, False)


def test_the_role_without_the_permissions_is_refused() -> None:
    # Named in the settings, not (yet) in the role group.
    assert doors(person("ada@example.com")) == (False, False, False)


def test_an_approver_and_an_inactive_auditor_are_refused() -> None:
    assert doors(person("cy@example.com", APPROVER)) == (False, False, False)
    ada = person("ada@example.com", AUDITOR)
    ada.is_active = False
    assert doors(ada) == (False, False, False)
