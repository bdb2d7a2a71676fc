"""The Resource admin shows each resource's Zero sync status, without N+1 queries."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.pomerium.models import PolicySync
from tests.factories import ResourceFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/access/resource/"


@pytest.fixture
def admin_client_(as_user: Any) -> Any:
    return as_user("idp|root", "root@example.com", groups=["portal-admins"])


def test_changelist_and_change_page_show_sync_status(admin_client_: Any) -> None:
    synced = ResourceFactory(slug="synced", name="Synced")
    failing = ResourceFactory(slug="failing", name="Failing")
    ResourceFactory(slug="fresh", name="Fresh")
    now = timezone.now()
    PolicySync.objects.create(
        resource=synced,
        remote_policy_id="pol-123",
        last_attempt_at=now,
        last_success_at=now,
        synced_generation=synced.sync_generation,
        routes=[{"id": "r1", "name": "grafana", "from": "https://grafana.example.com"}],
    )
    PolicySync.objects.create(
        resource=failing, last_attempt_at=now, last_error="Zero answered 503", last_error_at=now
    )
    page = admin_client_.get(CHANGELIST).content.decode()
    assert "current" in page
    assert "error" in page
    assert "not synced yet" in page
    detail = admin_client_.get(f"{CHANGELIST}{synced.pk}/change/").content.decode()
    assert "pol-123" in detail
    assert "grafana" in detail
    assert f"/admin/zero/policysync/{synced.zero.pk}/change/" in detail


def test_changelist_query_count_is_constant(admin_client_: Any) -> None:
    admin_client_.get(CHANGELIST)  # first request creates the user
    ResourceFactory()
    with CaptureQueriesContext(connection) as one:
        admin_client_.get(CHANGELIST)
    for resource in ResourceFactory.create_batch(60):
        PolicySync.objects.create(resource=resource, last_attempt_at=timezone.now())
    with CaptureQueriesContext(connection) as many:
        admin_client_.get(CHANGELIST)
    assert len(many) == len(one)
