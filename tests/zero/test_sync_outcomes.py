"""apps.pomerium.sync against the Zero simulator over real HTTP: expiry, changesets,
failures and routes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from apps import ppl
from apps.access import services
from apps.access.actions import AccessAction
from apps.access.models import AccessRequest, Grant, Resource
from apps.access.states import GrantState, SyncStatus
from apps.audit.models import AuditEvent
from apps.pomerium.client import get_client
from apps.pomerium.models import PolicySync
from apps.pomerium.sync import FAILED, SYNCED, sync_resource
from devtools.zerosim.simulator import ZeroSimulator
from tests.factories import GrantFactory, ResourceFactory, UserFactory
from tests.zero.helpers import A, actions, approve, last_seq, policy_text

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("zero_settings")]


# ------------------------------------------------------------------------------ expiry


def test_expired_grant_is_denied_by_its_before_then_removed(
    sim: ZeroSimulator, resource: Resource
) -> None:
    now = timezone.now()
    grant = GrantFactory(
        resource=resource,
        request__resource=resource,
        email="dave@example.com",
        not_before=now - timedelta(minutes=59),
        expires_at=now + timedelta(minutes=1),
    )
    Resource.objects.filter(pk=resource.pk).update(sync_generation=1)
    sync_resource(resource.pk, now=now)
    assert sim.evaluate("jit-grafana", "dave@example.com", now)
    # The rule is still in the policy, and its "before" already closes the door.
    assert not sim.evaluate("jit-grafana", "dave@example.com", grant.expires_at)

    later = grant.expires_at + timedelta(seconds=1)
    assert services.expire_due(later)["grants_expired"] == 1
    before = last_seq()
    outcome = sync_resource(resource.pk, now=later)

    assert outcome.removed == 1
    assert "dave@example.com" not in policy_text(sim, resource)
    grant.refresh_from_db()
    assert grant.state == GrantState.EXPIRED and grant.sync_status == SyncStatus.REMOVED
    assert actions(before) == [A.ZERO_POLICY_WRITTEN, AccessAction.GRANT_ENFORCED]
    for version in sim.history("jit-grafana"):
        if version["ppl"] and "dave@example.com" in version["ppl"]:
            assert ppl.rfc3339(grant.expires_at) in version["ppl"]


def test_scheduled_grant_is_written_with_its_future_start(
    sim: ZeroSimulator, resource: Resource, bob: Any
) -> None:
    user = UserFactory(email="erin@example.com")
    start = timezone.now() + timedelta(hours=2)
    req = services.submit_request(
        requester=user,
        resource=resource,
        duration_minutes=60,
        justification="Planned maintenance window",
        start_at=start,
    )
    grant = services.approve_request(req, approver=bob)
    assert grant is not None and grant.state == GrantState.SCHEDULED

    sync_resource(resource.pk)

    assert not sim.evaluate("jit-grafana", "erin@example.com")
    assert sim.evaluate("jit-grafana", "erin@example.com", start + timedelta(minutes=1))
    assert not AccessRequest.objects.filter(state="pending").exists()


# ---------------------------------------------------------------------------- changesets


# Changesets: tests/zero/test_sync_changesets.py.


# ------------------------------------------------------------------------------ failures


def test_failure_marks_grants_error_and_audits_once_per_streak(
    sim: ZeroSimulator, resource: Resource, bob: Any
) -> None:
    grant = approve("alice@example.com", resource, bob)
    sim.set_faults(error_rate=1.0)
    before = last_seq()

    first = sync_resource(resource.pk)
    second = sync_resource(resource.pk)

    assert first.status == FAILED and first.transient and second.status == FAILED
    grant.refresh_from_db()
    assert grant.sync_status == SyncStatus.ERROR
    assert "returned" in grant.sync_error and "simulated fault" in grant.sync_error
    state = PolicySync.objects.get(resource=resource)
    assert state.consecutive_failures == 2 and state.last_error == grant.sync_error
    assert state.synced_generation == 0 and state.lease_owner == ""
    assert actions(before) == [A.ZERO_SYNC_FAILED]
    failed = AuditEvent.objects.get(action=A.ZERO_SYNC_FAILED)
    assert failed.details["transient"] is True and failed.details["grants_in_error"] == 1

    sim.set_faults(error_rate=0.0)
    assert sync_resource(resource.pk).status == SYNCED
    grant.refresh_from_db()
    assert grant.sync_status == SyncStatus.LIVE and grant.sync_error == ""
    assert PolicySync.objects.get(resource=resource).consecutive_failures == 0
    assert actions(before) == [
        A.ZERO_SYNC_FAILED,
        A.ZERO_POLICY_CREATED,
        AccessAction.GRANT_ENFORCED,
    ]


def test_failures_never_leak_tokens(sim: ZeroSimulator, resource: Resource, bob: Any) -> None:
    approve("alice@example.com", resource, bob)
    sim.set_faults(error_rate=1.0)
    sync_resource(resource.pk)
    sim.set_faults(error_rate=0.0)
    sync_resource(resource.pk)
    token = get_client()._id_token
    assert token

    texts = [str(e.details) for e in AuditEvent.objects.all()]
    texts += list(PolicySync.objects.values_list("last_error", flat=True))
    texts += list(Grant.objects.values_list("sync_error", flat=True))
    assert not [t for t in texts if sim.api_token in t or token in t]


def test_revocation_during_an_outage_lands_after_recovery(
    sim: ZeroSimulator, resource: Resource, bob: Any
) -> None:
    grant = approve("alice@example.com", resource, bob)
    sync_resource(resource.pk)
    sim.set_faults(error_rate=1.0)
    services.revoke_grant(grant, actor=bob, reason="laptop stolen")

    assert sync_resource(resource.pk).status == FAILED
    grant.refresh_from_db()
    assert grant.sync_status == SyncStatus.ERROR
    sim.set_faults(error_rate=0.0)
    assert sync_resource(resource.pk).removed == 1
    assert not sim.evaluate("jit-grafana", "alice@example.com")


def test_invalid_base_rules_fail_permanently_without_calling_zero(
    sim: ZeroSimulator, bob: Any
) -> None:
    resource = ResourceFactory(slug="bad", base_ppl=[{"allow": {"and": [{"bogus": True}]}}])
    grant = approve("alice@example.com", resource, bob)

    outcome = sync_resource(resource.pk)

    assert outcome.status == FAILED and not outcome.transient
    assert "base PPL is invalid" in outcome.error and "bogus" in outcome.error
    assert sum(sim.calls.values()) == 0
    grant.refresh_from_db()
    assert grant.sync_status == SyncStatus.ERROR
    assert actions()[-1] == A.ZERO_SYNC_FAILED


def test_missing_resource(resource: Resource) -> None:
    assert sync_resource(resource.pk + 1000).status == "missing"


# --------------------------------------------------------------------------------- routes


def test_forced_sync_caches_the_routes_the_policy_is_attached_to(
    sim: ZeroSimulator, resource: Resource
) -> None:
    first = sync_resource(resource.pk)
    sim.add_route("grafana", "https://grafana.example.com", [first.policy_id])
    sim.add_route("other", "https://other.example.com", [])

    sync_resource(resource.pk, force=True)

    routes = PolicySync.objects.get(resource=resource).routes
    assert [(r["name"], r["from"]) for r in routes] == [("grafana", "https://grafana.example.com")]
