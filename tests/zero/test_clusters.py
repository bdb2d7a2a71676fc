"""Several Zero clusters: each resource's policy lives in its cluster only, a move deletes
the old policy only once the new one is enforced, and one cluster's failure stays its own.

Against the simulator over real HTTP, with two clusters of one organization: the default
one (``CLUSTER_ID``) and ``production``.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from apps.access import services
from apps.access.models import Resource
from apps.access.services.resources import save_resource
from apps.access.states import SyncStatus
from apps.audit.models import AuditEvent
from apps.pomerium.client import ZeroClient
from apps.pomerium.models import PolicySync
from apps.pomerium.sync import FAILED, SYNCED, resources_to_tick, sync_resource
from devtools.zerosim.simulator import ZeroSimulator
from devtools.zerosim.state import console_user
from tests.factories import ResourceFactory
from tests.zero.helpers import A, actions, approve, last_seq

pytestmark = [pytest.mark.django_db]

PROD = "cluster-prod"


@pytest.fixture
def two(zero_settings: ZeroSimulator, settings: Any) -> ZeroSimulator:
    """The simulator with a second cluster, ``production``, configured in the portal."""
    zero_settings.add_cluster(PROD, "ns-prod")
    settings.ZERO_CLUSTERS = {"production": PROD}
    return zero_settings


def _move(resource: Resource, cluster: str) -> None:
    resource.refresh_from_db()
    resource.cluster = cluster
    resource.full_clean()
    save_resource(resource, actor=None, changed=["cluster"], created=False)


def test_each_resource_writes_to_its_own_cluster_only(two: ZeroSimulator, bob: Any) -> None:
    staging = ResourceFactory(slug="grafana")
    prod = ResourceFactory(slug="billing", cluster="production")
    approve("alice@example.com", staging, bob)
    approve("dave@example.com", prod, bob)

    assert sync_resource(staging.pk).status == SYNCED
    assert sync_resource(prod.pk).status == SYNCED

    assert two.policy_by_name("jit-grafana") is not None
    assert two.policy_by_name("jit-billing") is None
    assert two.policy_by_name("jit-billing", cluster=PROD) is not None
    assert two.policy_by_name("jit-grafana", cluster=PROD) is None
    assert two.evaluate("jit-billing", "dave@example.com", cluster=PROD)
    assert two.cluster().write_count == 1 and two.cluster(PROD).write_count == 1
    assert PolicySync.objects.get(resource=prod).cluster_id == PROD
    assert PolicySync.objects.get(resource=staging).cluster_id == two.cluster_id
    # The created policy's namespace is the production cluster's.
    created = two.policy_by_name("jit-billing", cluster=PROD)
    assert created is not None and created["namespaceId"] == "ns-prod"


def test_api_calls_per_sync_do_not_depend_on_the_cluster(two: ZeroSimulator, bob: Any) -> None:
    staging = ResourceFactory(slug="grafana")
    prod = ResourceFactory(slug="billing", cluster="production")
    approve("alice@example.com", staging, bob)
    approve("dave@example.com", prod, bob)

    first, second = sync_resource(staging.pk), sync_resource(prod.pk)

    # Each cluster's client exchanges its own ID token once, reads its namespace, creates
    # and reads the create's activity entry (the proof it is enforced): the same calls,
    # whichever cluster.
    assert first.calls == second.calls == 5
    approve("erin@example.com", prod, bob)
    assert sync_resource(prod.pk).calls == 3  # get, replace, the write's entry (token cached)


def test_one_clusters_outage_does_not_stop_the_others_sync(two: ZeroSimulator, bob: Any) -> None:
    staging = ResourceFactory(slug="grafana")
    prod = ResourceFactory(slug="billing", cluster="production")
    approve("alice@example.com", staging, bob)
    grant = approve("dave@example.com", prod, bob)
    two.set_cluster_outage(PROD, 503)

    failed = sync_resource(prod.pk)
    done = sync_resource(staging.pk)

    assert failed.status == FAILED and failed.transient
    assert "503" in failed.error
    assert done.status == SYNCED and two.evaluate("jit-grafana", "alice@example.com")
    grant.refresh_from_db()
    assert grant.sync_status == SyncStatus.ERROR
    two.set_cluster_outage(PROD, None)
    assert sync_resource(prod.pk).status == SYNCED
    assert two.evaluate("jit-billing", "dave@example.com", cluster=PROD)


def test_an_unconfigured_cluster_fails_the_sync_readably(two: ZeroSimulator, settings: Any) -> None:
    resource = ResourceFactory(slug="grafana", cluster="production")
    settings.ZERO_CLUSTERS = {}

    outcome = sync_resource(resource.pk)

    assert outcome.status == FAILED and not outcome.transient
    assert "names cluster 'production', which is not configured" in outcome.error
    assert two.write_count == 0


# ------------------------------------------------------------------------------ moving


def test_moving_is_refused_while_a_grant_is_not_confirmed_removed(
    two: ZeroSimulator, resource: Resource, bob: Any
) -> None:
    grant = approve("alice@example.com", resource, bob)
    sync_resource(resource.pk)
    resource.refresh_from_db()
    resource.cluster = "production"

    with pytest.raises(ValidationError) as caught:
        resource.full_clean()
    assert "while 1 grant(s) are live or not confirmed removed" in str(caught.value)
    with pytest.raises(ValidationError):
        save_resource(resource, actor=None, changed=["cluster"], created=False)
    assert Resource.objects.get(pk=resource.pk).cluster == "default"

    services.revoke_grant(grant, actor=bob, reason="done")
    resource.refresh_from_db()
    resource.cluster = "production"
    with pytest.raises(ValidationError):  # revoked, but Zero has not confirmed it yet
        resource.full_clean()
    sync_resource(resource.pk)
    grant.refresh_from_db()
    assert grant.sync_status == SyncStatus.REMOVED
    resource.full_clean()  # now it may move


def test_a_move_deletes_the_old_policy_only_once_the_new_one_is_enforced(
    two: ZeroSimulator, resource: Resource, settings: Any
) -> None:
    sync_resource(resource.pk)
    old = two.policy_by_name("jit-grafana")
    assert old is not None
    # Production does not auto-apply, and the portal may not apply for it.
    two.configure(auto_apply=False, apply_delay=0, cluster=PROD)
    settings.ZERO_APPLY_CHANGESETS = False

    _move(resource, "production")
    before = last_seq()
    waiting = sync_resource(resource.pk)

    assert waiting.status == SYNCED and waiting.created and waiting.pending_apply
    assert two.policy_by_name("jit-grafana") is not None  # the old one is kept meanwhile
    state = PolicySync.objects.get(resource=resource)
    assert state.cluster_id == PROD
    assert state.retired_policies == [{"cluster_id": two.cluster_id, "policy_id": old["id"]}]
    assert resource.pk in resources_to_tick()

    pending = two.cluster(PROD).pending_changeset()
    assert pending is not None
    two.cluster(PROD).apply_changeset(pending["id"], console_user("admin@example.com"))
    done = sync_resource(resource.pk)

    assert done.status == SYNCED and not done.pending_apply
    assert two.policy_by_name("jit-grafana") is None  # deleted in the old cluster
    assert two.effective_policy("jit-grafana", cluster=PROD) is not None
    state.refresh_from_db()
    assert state.retired_policies == []
    assert resource.pk not in resources_to_tick()
    assert actions(before) == [A.ZERO_POLICY_CREATED, A.ZERO_POLICY_WRITTEN]
    created, deleted = AuditEvent.objects.filter(seq__gt=before).order_by("seq")
    assert created.details["replaces_policy_id"] is None
    assert deleted.details["deleted"] is True
    assert deleted.details["policy_id"] == old["id"]
    assert deleted.details["cluster_id"] == two.cluster_id


def test_a_failed_deletion_is_retried_and_does_not_fail_the_pass(
    two: ZeroSimulator, resource: Resource, bob: Any
) -> None:
    sync_resource(resource.pk)
    _move(resource, "production")
    two.set_cluster_outage(two.cluster_id, 503)
    grant = approve("alice@example.com", Resource.objects.get(pk=resource.pk), bob)

    outcome = sync_resource(resource.pk)

    assert outcome.status == SYNCED and outcome.live == 1
    grant.refresh_from_db()
    assert grant.sync_status == SyncStatus.LIVE
    assert len(PolicySync.objects.get(resource=resource).retired_policies) == 1
    assert resource.pk in resources_to_tick()
    two.set_cluster_outage(two.cluster_id, None)
    assert sync_resource(resource.pk).status == SYNCED
    assert PolicySync.objects.get(resource=resource).retired_policies == []
    assert two.policies_by_name("jit-grafana") == []


# ------------------------------------------------------------------ check_connectivity


def test_check_connectivity_lists_every_cluster(two: ZeroSimulator, settings: Any) -> None:
    settings.CELERY_BROKER_URL = "memory://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    two.configure(auto_apply=False, cluster=PROD)
    out = io.StringIO()

    call_command("check_connectivity", stdout=out)

    lines = out.getvalue().splitlines()
    assert len(lines) == 12  # five checks per cluster, then JWKS and broker
    assert (
        "ok    Zero namespace lookup [default]: cluster cluster-sim uses namespace ns-sim"
        in (lines[1])
    )
    assert lines[6].startswith(
        "ok    Zero namespace lookup [production]: cluster cluster-prod uses namespace ns-prod"
    )
    assert "auto-applies changesets" in lines[3]
    assert "auto-apply is off" in lines[8]
    assert two.calls[("POST", "/token")] == 2  # one API token, an ID token per cluster


def test_check_connectivity_names_each_failing_cluster_in_one_line(
    two: ZeroSimulator, settings: Any
) -> None:
    settings.CELERY_BROKER_URL = "memory://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    two.set_cluster_outage(PROD, 503)
    out = io.StringIO()

    with pytest.raises(CommandError) as caught:
        call_command("check_connectivity", stdout=out)

    assert caught.value.returncode == 1
    # Namespace, policy list and changeset mode fail; write access is skipped (no policy).
    assert str(caught.value) == "3 of 12 checks failed (clusters: production)"
    summary = [line for line in out.getvalue().splitlines() if line.startswith("FAIL  cluster")]
    assert len(summary) == 1
    assert summary[0].startswith("FAIL  cluster production (cluster-prod): Zero namespace lookup")
    assert "503" in summary[0]


def test_a_client_for_another_cluster_shares_the_configuration(sim: ZeroSimulator) -> None:
    client = ZeroClient(sim.url, sim.api_token, sim.organization_id, sim.cluster_id, timeout=3)
    other = client.for_cluster("c2")
    assert client.for_cluster(sim.cluster_id) is client
    assert (other.base_url, other.organization_id, other.cluster_id, other.timeout) == (
        client.base_url,
        client.organization_id,
        "c2",
        3,
    )
    assert sim.api_token not in repr(other)


def test_moving_back_before_the_deletion_keeps_the_policy(
    two: ZeroSimulator, resource: Resource, settings: Any
) -> None:
    sync_resource(resource.pk)
    first = two.policy_by_name("jit-grafana")
    assert first is not None
    two.configure(auto_apply=False, apply_delay=0, cluster=PROD)
    settings.ZERO_APPLY_CHANGESETS = False
    _move(resource, "production")
    assert sync_resource(resource.pk).pending_apply  # the default cluster's policy is kept

    _move(resource, "default")
    outcome = sync_resource(resource.pk)

    assert outcome.status == SYNCED and outcome.policy_id == first["id"]  # adopted again
    assert two.policy_by_name("jit-grafana") is not None
    state = PolicySync.objects.get(resource=resource)
    # Production's never-applied policy is deleted (the delete waits in its changeset).
    assert state.retired_policies == []
    assert two.policy_by_name("jit-grafana", cluster=PROD) is None
    assert two.cluster(PROD).pending_changeset() is not None
