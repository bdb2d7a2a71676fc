"""Resource.cluster: a name from the configured set, checked in the admin and bootstrap;
a move is refused while a grant is not confirmed removed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from apps.access import clusters
from apps.access.actions import AccessAction
from apps.access.models import Resource
from apps.access.states import SyncStatus
from apps.audit.models import AuditEvent
from tests.access.test_admin_requests import resource_form
from tests.factories import GrantFactory, ResourceFactory

pytestmark = pytest.mark.django_db

RESOURCES = "/admin/access/resource/"


@pytest.fixture(autouse=True)
def _two_clusters(settings: Any) -> None:
    settings.CLUSTER_ID = "c-default"
    settings.ZERO_CLUSTERS = {"staging": "c-staging", "production": "c-prod"}
    settings.ZERO_DEFAULT_CLUSTER = "default"


def test_the_configured_set_and_the_default() -> None:
    assert clusters.configured() == {
        "default": "c-default",
        "staging": "c-staging",
        "production": "c-prod",
    }
    assert ResourceFactory(slug="new").cluster == "default"


def test_the_default_cluster_may_be_another_name(settings: Any) -> None:
    settings.CLUSTER_ID = ""
    settings.ZERO_DEFAULT_CLUSTER = "staging"
    assert clusters.names() == ["staging", "production"]
    assert Resource().cluster == "staging"


def test_an_unknown_cluster_is_a_field_error() -> None:
    resource = ResourceFactory.build(slug="x", cluster="qa")
    with pytest.raises(ValidationError) as caught:
        resource.full_clean()
    assert caught.value.message_dict["cluster"] == [
        "Unknown cluster 'qa'; configured: default, staging, production."
    ]


def test_the_admin_offers_the_configured_clusters_and_saves_a_choice(superuser: Any) -> None:
    resource = ResourceFactory(slug="kibana", name="Kibana")
    url = f"{RESOURCES}{resource.pk}/change/"
    page = superuser.get(url).content.decode()
    for name in ("default", "staging", "production"):
        assert f'<option value="{name}"' in page

    response = superuser.post(url, resource_form(resource, cluster="production"))

    assert response.status_code == 302
    assert Resource.objects.get(pk=resource.pk).cluster == "production"
    changed = AuditEvent.objects.filter(action=AccessAction.RESOURCE_CHANGED).latest("seq")
    assert "cluster" in changed.details["changed"]


def test_the_admin_refuses_a_move_while_a_grant_is_live(superuser: Any) -> None:
    resource = ResourceFactory(slug="kibana", name="Kibana")
    GrantFactory(resource=resource, request__resource=resource, sync_status=SyncStatus.LIVE)
    url = f"{RESOURCES}{resource.pk}/change/"
    generation = resource.sync_generation

    response = superuser.post(url, resource_form(resource, cluster="production"))

    assert response.status_code == 200
    assert "while 1 grant(s) are live or not confirmed removed" in response.content.decode()
    resource.refresh_from_db()
    assert resource.cluster == "default" and resource.sync_generation == generation


def test_the_admin_refuses_an_unknown_cluster(superuser: Any) -> None:
    resource = ResourceFactory(slug="kibana", name="Kibana")
    url = f"{RESOURCES}{resource.pk}/change/"

    response = superuser.post(url, resource_form(resource, cluster="qa"))

    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert Resource.objects.get(pk=resource.pk).cluster == "default"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "resources.yaml"
    path.write_text(text)
    return path


def test_bootstrap_sets_the_cluster(tmp_path: Path) -> None:
    path = write(tmp_path, "resources:\n  - slug: db\n    name: DB\n    cluster: production\n")
    call_command("bootstrap", str(path))
    assert Resource.objects.get(slug="db").cluster == "production"


def test_bootstrap_refuses_an_unknown_cluster_and_writes_nothing(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "resources:\n  - slug: ok\n    name: OK\n  - slug: db\n    name: DB\n    cluster: qa\n",
    )
    with pytest.raises(CommandError) as caught:
        call_command("bootstrap", str(path))
    assert "cluster: Unknown cluster 'qa'" in str(caught.value)
    assert not Resource.objects.exists()


def test_bootstrap_refuses_a_move_while_a_grant_is_live(tmp_path: Path) -> None:
    resource = ResourceFactory(slug="db", name="DB")
    GrantFactory(resource=resource, request__resource=resource)
    path = write(tmp_path, "resources:\n  - slug: db\n    name: DB\n    cluster: staging\n")
    with pytest.raises(CommandError) as caught:
        call_command("bootstrap", str(path))
    assert "Cannot move to cluster 'staging'" in str(caught.value)
    assert Resource.objects.get(slug="db").cluster == "default"


def test_the_request_page_names_the_cluster_when_there_are_several(
    signed_in: Any, settings: Any
) -> None:
    from apps.access import services
    from tests.factories import AccessRequestFactory, UserFactory

    client, user = signed_in("alice", groups=["engineering"])
    resource = ResourceFactory(slug="billing", cluster="production")
    req = AccessRequestFactory(requester=user, resource=resource)
    services.approve_request(req, approver=UserFactory(groups=["approvers"]))

    assert "in Zero cluster production" in client.get(f"/requests/{req.pk}").content.decode()
    settings.ZERO_CLUSTERS = {}
    resource.cluster = "default"
    resource.save()
    assert "in Zero cluster" not in client.get(f"/requests/{req.pk}").content.decode()


def test_the_request_page_names_a_core_target_as_core(signed_in: Any, settings: Any) -> None:
    from apps.access import services
    from apps.access.pomerium_targets import Target
    from tests.factories import AccessRequestFactory, UserFactory

    settings.POMERIUM_SHARED_SECRET = "a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s="
    settings.POMERIUM_TARGETS = {"edge": Target("edge", "core", "http://edge.test:5443")}
    client, user = signed_in("alice", groups=["engineering"])
    resource = ResourceFactory(slug="billing", cluster="edge")
    req = AccessRequestFactory(requester=user, resource=resource)
    services.approve_request(req, approver=UserFactory(groups=["approvers"]))

    page = client.get(f"/requests/{req.pk}").content.decode()
    assert "in Pomerium Core edge" in page and "Zero cluster" not in page
