"""History that survives: people and resources the trail names are never deleted (archive
only), and reports name people as the trail recorded them."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction
from django.db.models import ProtectedError

from apps.access import reports, services
from apps.access.models import Grant, Resource
from apps.access.services.resources import save_resource
from apps.accounts.models import User
from tests.factories import ResourceFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def story() -> dict[str, Any]:
    resource = ResourceFactory(slug="prod-db", requester_groups=["engineering"])
    alice = UserFactory(username="idp|alice", email="alice@example.com", groups=["engineering"])
    bob = UserFactory(username="idp|bob", email="bob@example.com", groups=["approvers"])
    req = services.submit_request(
        requester=alice, resource=resource, duration_minutes=60, justification="Fix the index"
    )
    grant = services.approve_request(req, approver=bob)
    services.revoke_grant(grant, actor=bob, reason="done")
    return {"resource": resource, "alice": alice, "bob": bob, "grant": grant}


def test_a_person_the_trail_names_is_never_deleted(story: dict[str, Any]) -> None:
    from apps.audit.export import record_export

    # Carol only exported the trail: no row of the domain points at her, the trail does.
    carol = UserFactory(username="idp|carol", email="carol@example.com")
    record_export(actor=carol, fmt="csv", filters={}, via="web")
    # (A refused delete spoils its transaction, as any error inside Django's delete does.)
    with pytest.raises(ProtectedError, match="deactivate the account"), transaction.atomic():
        carol.delete()
    with pytest.raises(ProtectedError, match="named in the audit trail"), transaction.atomic():
        User.objects.filter(pk=carol.pk).delete()
    with pytest.raises(ProtectedError), transaction.atomic():
        story["bob"].delete()  # his approval row protects him too
    assert User.objects.filter(pk__in=[carol.pk, story["bob"].pk]).count() == 2
    stranger = UserFactory(email="never-seen@example.com")  # no entry names them
    stranger.delete()
    assert not User.objects.filter(pk=stranger.pk).exists()


def test_a_resource_the_trail_names_is_archived_not_deleted(story: dict[str, Any]) -> None:
    # The wiki was configured (audited) and never requested: only the trail names it.
    wiki = save_resource(
        Resource(slug="wiki", name="Wiki"), actor=None, changed=["name"], created=True
    )
    with pytest.raises(ProtectedError, match="archive it"), transaction.atomic():
        Resource.objects.filter(pk=wiki.pk).delete()
    resource: Resource = story["resource"]
    with pytest.raises(ProtectedError), transaction.atomic():
        resource.delete()  # its requests and grants protect it too
    resource.is_active = False
    save_resource(resource, actor=story["bob"], changed=["is_active"], created=False)
    assert not Resource.objects.get(pk=resource.pk).is_active
    fresh = ResourceFactory(slug="scratch")  # never audited
    fresh.delete()


def test_reports_name_people_as_the_trail_recorded_them(story: dict[str, Any]) -> None:
    bob, grant = story["bob"], story["grant"]
    # Bob is renamed; and the revoker link is gone (as SET_NULL left it for people an older
    # release deleted).
    bob.email = "robert@example.com"
    bob.save()
    Grant.objects.filter(pk=grant.pk).update(revoked_by=None)

    (row,) = reports.who_had_access(
        story["resource"], grant.not_before, grant.expires_at, among=Grant.objects.all()
    )

    assert row.approved_by == "bob@example.com"
    assert row.revoked_by == "bob@example.com"
