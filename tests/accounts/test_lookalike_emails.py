"""Issue 27, gap 14: a look-alike email never locks out the real address.

The red team signed in first as ``oﬃce-admin@`` (a ligature, equal to ``office-admin@``
only under NFKC): the portal let that account own the normalised address and refused the
real office-admin. Now, through the real middleware:

* a newcomer whose address is a compatibility look-alike of an existing person's is
  refused, with an audit entry naming both;
* an address that is already NFKC-normal is never the one refused: the earlier look-alike
  account is retired (deactivated, its address key cleared, its open grants revoked and its
  pending requests cancelled, audited) and the real person signs in;
* a look-alike never holds a role listed for the address it imitates.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from apps.access import services
from apps.access.actions import AccessAction
from apps.access.models import AccessRequest, Grant
from apps.access.states import GrantState, RequestState
from apps.accounts.actions import AccountAction
from apps.accounts.models import User
from apps.audit.models import AuditEvent
from tests.factories import ResourceFactory, UserFactory
from tests.support.jwks import SigningKey, claims_for, mint

pytestmark = pytest.mark.django_db

HEADER = "HTTP_X_POMERIUM_JWT_ASSERTION"
REAL = "office-admin@example.com"
LIGATURE = "o\ufb03ce-admin@example.com"  # "oﬃce-admin@"
FULL_WIDTH = "\uff4fffice-admin@example.com"  # a full-width o


def visit(key: SigningKey, sub: str, email: str, path: str = "/") -> Any:
    return Client().get(path, **{HEADER: mint(key, claims_for(sub, email, groups=["eng"]))})


def rejections() -> list[dict[str, Any]]:
    return [
        e.details
        for e in AuditEvent.objects.filter(action=AccountAction.ASSERTION_REJECTED).order_by("seq")
    ]


@pytest.fixture(autouse=True)
def office_admin_is_an_admin(settings: Any) -> None:
    settings.PORTAL_ADMIN_EMAILS = [REAL]


def test_the_real_address_signs_in_after_a_look_alike_took_it(signing_key: SigningKey) -> None:
    assert visit(signing_key, "idp|mallory", LIGATURE).status_code == 200
    mallory = User.objects.get(username="idp|mallory")
    # The look-alike does not hold the role listed for the address it imitates.
    assert not mallory.is_superuser and not mallory.is_staff
    grafana, vault = ResourceFactory(slug="grafana"), ResourceFactory(slug="vault")
    bob = UserFactory(username="idp|bob", email="bob@example.com", groups=["approvers"])
    for resource in (grafana, vault):
        req = services.submit_request(
            requester=mallory, resource=resource, duration_minutes=60, justification="dashboards"
        )
        if resource == grafana:
            services.approve_request(req, approver=bob)

    assert visit(signing_key, "idp|office", REAL).status_code == 200
    office = User.objects.get(username="idp|office")
    assert office.is_superuser and office.email_key == REAL
    mallory.refresh_from_db()
    assert (mallory.is_active, mallory.email_key, mallory.email) == (False, None, LIGATURE)
    grant = Grant.objects.get(user=mallory)
    assert grant.state == GrantState.REVOKED and grant.revoked_by is None
    assert AccessRequest.objects.get(resource=vault).state == RequestState.CANCELLED
    retired = AuditEvent.objects.get(action="user.lookalike_retired")
    assert retired.details == {
        "retired_user": mallory.pk,
        "retired_sub": "idp|mallory",
        "retired_email": LIGATURE,
        "by_sub": "idp|office",
        "by_email": REAL,
    }
    revoked = AuditEvent.objects.get(action=AccessAction.GRANT_REVOKED)
    assert revoked.actor_label == "system"
    assert revoked.details["reason"] == f"look-alike of {REAL}, which signed in"
    # The look-alike's next visit is refused, naming both.
    again = visit(signing_key, "idp|mallory", LIGATURE)
    assert again.status_code == 403 and "lookalike_email" in again.content.decode()
    (details,) = rejections()
    assert (details["reason"], details["sub"], details["email"]) == (
        "lookalike_email",
        "idp|mallory",
        LIGATURE,
    )
    assert (details["existing_sub"], details["existing_email"]) == ("idp|office", REAL)


@pytest.mark.parametrize("lookalike", [LIGATURE, FULL_WIDTH])
def test_a_look_alike_newcomer_is_refused_naming_both(
    signing_key: SigningKey, lookalike: str
) -> None:
    assert visit(signing_key, "idp|office", REAL).status_code == 200
    response = visit(signing_key, "idp|mallory", lookalike)
    assert response.status_code == 403
    assert list(User.objects.values_list("username", flat=True)) == ["idp|office"]
    (details,) = rejections()
    assert details["reason"] == "lookalike_email"
    assert (details["sub"], details["email"]) == ("idp|mallory", lookalike)
    assert (details["existing_sub"], details["existing_email"]) == ("idp|office", REAL)
    assert User.objects.get(username="idp|office").is_active


def test_between_two_look_alikes_the_first_keeps_the_address(signing_key: SigningKey) -> None:
    assert visit(signing_key, "idp|one", LIGATURE).status_code == 200
    assert visit(signing_key, "idp|two", FULL_WIDTH).status_code == 403
    assert [d["reason"] for d in rejections()] == ["lookalike_email"]
    assert User.objects.get(username="idp|one").is_active


def test_case_variants_stay_one_person_first_come(signing_key: SigningKey) -> None:
    # Both NFKC-normal: not look-alikes, the same address in another case (as before).
    assert visit(signing_key, "idp|office", REAL).status_code == 200
    assert visit(signing_key, "idp|other", "Office-Admin@Example.com").status_code == 403
    assert [d["reason"] for d in rejections()] == ["duplicate_identity"]
