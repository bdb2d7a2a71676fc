"""The "Zero policy sync" admin: what it shows, who may "Sync now", and what that does."""

from __future__ import annotations

from typing import Any

import pytest

from apps.access import services
from apps.access.models import Resource
from apps.access.states import SyncStatus
from apps.pomerium.models import PolicySync
from apps.pomerium.sync import sync_resource
from devtools.zerosim.simulator import ZeroSimulator
from tests.factories import ResourceFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("zero_settings", "eager_celery")]

CHANGELIST = "/admin/zero/policysync/"


@pytest.fixture
def resource(sim: ZeroSimulator) -> Resource:
    resource = ResourceFactory(slug="grafana", name="Grafana admin")
    user = UserFactory(email="alice@example.com")
    bob = UserFactory(username="idp|bob", email="bob@example.com", groups=["approvers"])
    req = services.submit_request(
        requester=user, resource=resource, duration_minutes=60, justification="Need to debug"
    )
    services.approve_request(req, approver=bob)
    outcome = sync_resource(resource.pk)
    sim.add_route("grafana", "https://grafana.example.com", [outcome.policy_id])
    sync_resource(resource.pk, force=True)
    resource.refresh_from_db()
    return resource


def test_changelist_shows_sync_status(as_user: Any, resource: Resource) -> None:
    state = PolicySync.objects.get(resource=resource)
    PolicySync.objects.filter(pk=state.pk).update(last_error="Zero API PUT returned 503")
    admin = as_user("idp|root", "root@example.com", groups=["portal-admins"])

    response = admin.get(CHANGELIST)

    html = response.content.decode()
    assert response.status_code == 200
    assert state.remote_policy_id in html
    assert "grafana (https://grafana.example.com)" in html
    assert "Zero API PUT returned 503" in html
    assert f"{state.synced_generation} / {resource.sync_generation}" in html


def test_rows_are_view_only(as_user: Any, resource: Resource) -> None:
    admin = as_user("idp|root", "root@example.com", groups=["portal-admins"])
    state = PolicySync.objects.get(resource=resource)

    page = admin.get(f"{CHANGELIST}{state.pk}/change/")
    admin.post(f"{CHANGELIST}{state.pk}/change/", {"remote_policy_id": "hijacked"})

    assert page.status_code == 200
    assert PolicySync.objects.get(pk=state.pk).remote_policy_id == state.remote_policy_id
    assert admin.get(f"{CHANGELIST}add/").status_code == 403
    assert admin.get(f"{CHANGELIST}{state.pk}/delete/").status_code == 403
    response = admin.get(CHANGELIST)
    assert "delete_selected" not in response.content.decode()


def test_sync_now_repairs_drift_for_an_approver(
    as_user: Any, sim: ZeroSimulator, resource: Resource
) -> None:
    sim.hand_edit("jit-grafana", [{"allow": {"and": [{"accept": True}]}}], by_email="eve@x.com")
    approver = as_user("idp|bob", "bob@example.com", groups=["approvers"])
    state = PolicySync.objects.get(resource=resource)

    response = approver.post(
        CHANGELIST, {"action": "sync_now", "_selected_action": [state.pk]}, follow=True
    )

    assert "Queued a sync of 1 resource(s)." in response.content.decode()
    assert not sim.evaluate("jit-grafana", "anyone@example.com")
    assert sim.evaluate("jit-grafana", "alice@example.com")
    assert resource.grants.get().sync_status == SyncStatus.LIVE


def test_sync_now_is_refused_without_the_permission(
    as_user: Any, sim: ZeroSimulator, resource: Resource
) -> None:
    sim.hand_edit("jit-grafana", [{"allow": {"and": [{"accept": True}]}}], by_email="eve@x.com")
    auditor = as_user("idp|carl", "carl@example.com", groups=["compliance"])
    state = PolicySync.objects.get(resource=resource)

    auditor.post(CHANGELIST, {"action": "sync_now", "_selected_action": [state.pk]})

    assert sim.evaluate("jit-grafana", "anyone@example.com")  # nothing was repaired
