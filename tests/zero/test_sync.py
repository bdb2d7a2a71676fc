"""apps.zero.sync against the Zero simulator over real HTTP: outcomes, grants, audit rows."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from apps.access import services
from apps.access.models import AccessRequest, Grant, Resource
from apps.access.states import GrantState, SyncStatus
from apps.audit.models import AuditAction, AuditEvent
from apps.zero import ppl
from apps.zero.client import ZeroClient, get_client
from apps.zero.models import PolicySync
from apps.zero.simulator import ZeroSimulator
from apps.zero.sync import BUSY, FAILED, SYNCED, UP_TO_DATE, desired_policy, sync_resource
from tests.factories import GrantFactory, ResourceFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("zero_settings")]

A = AuditAction
LINK = "https://jit.example.com/requests/new?resource=grafana"


def actions(since: int = 0) -> list[str]:
    """Semantic audit actions in chain order (field-level mirrors left out)."""
    return list(
        AuditEvent.objects.in_chain_order()
        .filter(seq__gt=since)
        .exclude(action=A.FIELD_CHANGED)
        .values_list("action", flat=True)
    )


def last_seq() -> int:
    event = AuditEvent.objects.order_by("-seq").first()
    return event.seq if event else 0


@pytest.fixture
def resource() -> Resource:
    return ResourceFactory(slug="grafana", name="Grafana admin")


@pytest.fixture
def bob() -> Any:
    return UserFactory(username="idp|bob", email="bob@example.com", groups=["approvers"])


def approve(email: str, resource: Resource, approver: Any, minutes: int = 60) -> Grant:
    user = UserFactory(username=f"idp|{email}", email=email)
    req = services.submit_request(
        requester=user,
        resource=resource,
        duration_minutes=minutes,
        justification="Investigating the checkout outage",
    )
    grant = services.approve_request(req, approver=approver)
    assert grant is not None
    return grant


def policy_text(sim: ZeroSimulator, resource: Resource) -> str:
    found = sim.policy_by_name(resource.policy_name)
    assert found is not None
    return found["ppl"]


# --------------------------------------------------------------------- approve and revoke


def test_approval_reaches_zero_and_the_window_is_enforced(
    sim: ZeroSimulator, resource: Resource, bob: Any
) -> None:
    grant = approve("Alice@Example.com", resource, bob)
    before = last_seq()

    outcome = sync_resource(resource.pk)

    assert outcome.status == SYNCED and outcome.created and outcome.live == 1
    assert sim.evaluate("jit-grafana", "alice@example.com")
    assert not sim.evaluate("jit-grafana", "alice@example.com", grant.expires_at)
    assert not sim.evaluate("jit-grafana", "mallory@example.com")
    grant.refresh_from_db()
    assert grant.sync_status == SyncStatus.LIVE
    assert grant.live_at is not None and grant.enforced_at == grant.live_at
    assert actions(before) == [A.ZERO_POLICY_CREATED, A.GRANT_ENFORCED]
    enforced = AuditEvent.objects.get(action=A.GRANT_ENFORCED)
    assert enforced.details["email"] == "alice@example.com"
    assert enforced.details["enforced_at"] == grant.enforced_at.isoformat()
    assert enforced.details["first_time"] is True
    created = AuditEvent.objects.get(action=A.ZERO_POLICY_CREATED)
    assert created.details["policy_id"] == outcome.policy_id
    assert created.details["grants"] == 1
    state = PolicySync.objects.get(resource=resource)
    assert state.remote_policy_id == outcome.policy_id
    assert state.synced_generation == Resource.objects.get(pk=resource.pk).sync_generation
    assert state.last_success_at is not None and state.lease_owner == ""


def test_revocation_is_denied_at_once_and_its_end_recorded(
    sim: ZeroSimulator, resource: Resource, bob: Any
) -> None:
    grant = approve("alice@example.com", resource, bob)
    sync_resource(resource.pk)
    services.revoke_grant(grant, actor=bob, reason="incident over")
    before = last_seq()

    outcome = sync_resource(resource.pk)

    assert outcome.status == SYNCED and outcome.wrote and outcome.removed == 1
    assert not sim.evaluate("jit-grafana", "alice@example.com")
    assert ppl.normalize(policy_text(sim, resource)) == [ppl.DENY_ALL_RULE]
    grant.refresh_from_db()
    assert grant.sync_status == SyncStatus.REMOVED
    assert grant.removed_at is not None and grant.enforced_at == grant.removed_at
    assert grant.removed_at >= grant.revoked_at
    assert actions(before) == [A.ZERO_POLICY_WRITTEN, A.GRANT_ENFORCED]
    written = AuditEvent.objects.get(action=A.ZERO_POLICY_WRITTEN)
    assert written.details["rules_removed_count"] == 1
    assert "alice@example.com" in written.details["rules_removed"][0]
    assert written.details["before_digest"] != written.details["after_digest"]
    assert written.details["adopted"] is False
    removal = AuditEvent.objects.filter(action=A.GRANT_ENFORCED).order_by("-seq").first()
    assert removal is not None
    assert removal.details["removed"] is True
    assert removal.details["enforced_at"] == grant.removed_at.isoformat()


def test_extension_is_enforced_again_without_a_second_live_notice(
    sim: ZeroSimulator,
    resource: Resource,
    bob: Any,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from apps.access import tasks as access_tasks

    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(access_tasks.notify, "delay", lambda **kw: sent.append(kw))
    grant = approve("alice@example.com", resource, bob)
    with django_capture_on_commit_callbacks(execute=True):
        sync_resource(resource.pk)
    assert sent == [{"event": "grant_live", "grant_id": grant.pk}]
    old_end = grant.expires_at
    services.extend_grant(grant, actor=bob, new_expires_at=old_end + timedelta(hours=1), reason="x")
    before = last_seq()

    with django_capture_on_commit_callbacks(execute=True):
        outcome = sync_resource(resource.pk)

    assert outcome.live == 1
    assert sim.evaluate("jit-grafana", "alice@example.com", old_end + timedelta(minutes=30))
    assert actions(before) == [A.ZERO_POLICY_WRITTEN, A.GRANT_ENFORCED]
    enforced = AuditEvent.objects.filter(action=A.GRANT_ENFORCED).order_by("-seq").first()
    assert enforced is not None and enforced.details["first_time"] is False
    assert len(sent) == 1  # "access is live" is sent once per grant, not per change
    grant.refresh_from_db()
    assert grant.sync_status == SyncStatus.LIVE and grant.enforced_at > grant.live_at


# ------------------------------------------------------------------ coalescing and writes


def test_same_grants_render_byte_identical_ppl(
    sim: ZeroSimulator, resource: Resource, bob: Any
) -> None:
    approve("alice@example.com", resource, bob)
    approve("carol@example.com", resource, bob)
    now = timezone.now()
    first, second = desired_policy(resource, now), desired_policy(resource, now)

    assert ppl.dumps(first) == ppl.dumps(second)
    sync_resource(resource.pk)
    assert policy_text(sim, resource) == ppl.dumps(first)  # what Zero stores, byte for byte
    rules = first[-1]["allow"]["and"]
    assert rules[1]["date"]["before"].endswith("Z")


def test_writes_only_when_different(sim: ZeroSimulator, resource: Resource, bob: Any) -> None:
    approve("alice@example.com", resource, bob)
    sync_resource(resource.pk)
    assert sim.write_count == 1
    calls_before = sum(sim.calls.values())
    before = last_seq()

    again = sync_resource(resource.pk)
    assert again.status == UP_TO_DATE and again.calls == 0
    assert sum(sim.calls.values()) == calls_before  # coalesced: no remote call at all

    forced = sync_resource(resource.pk, force=True)
    assert forced.status == SYNCED and not forced.wrote and not forced.drift
    assert sim.write_count == 1
    assert actions(before) == []


def test_steady_state_approval_costs_get_put_settings_and_no_token(
    sim: ZeroSimulator, resource: Resource, bob: Any
) -> None:
    approve("alice@example.com", resource, bob)
    sync_resource(resource.pk)  # warms the process-wide client (token, namespace)
    approve("carol@example.com", resource, bob)
    client = get_client()
    calls_before = client.calls.copy()

    outcome = sync_resource(resource.pk)

    delta = client.calls - calls_before
    assert outcome.wrote and outcome.calls == 3
    assert delta == {
        ("GET", "/organizations/{org}/policies/{id}"): 1,
        ("PUT", "/organizations/{org}/policies/{id}"): 1,
        ("GET", "/organizations/{org}/clusters/{cluster}/settings"): 1,
    }
    assert ("POST", "/token") not in delta


def test_a_burst_of_approvals_is_settled_by_one_write(
    sim: ZeroSimulator, resource: Resource, bob: Any
) -> None:
    grants = [approve(f"user{i}@example.com", resource, bob) for i in range(10)]

    outcome = sync_resource(resource.pk)

    assert outcome.live == 10 and sim.write_count == 1
    assert all(sim.evaluate("jit-grafana", g.email) for g in grants)
    assert sync_resource(resource.pk).status == UP_TO_DATE


def test_a_change_during_the_sync_triggers_another_pass(
    sim: ZeroSimulator, resource: Resource, bob: Any
) -> None:
    approve("alice@example.com", resource, bob)
    generations: list[int] = []

    class ApprovesMidway(ZeroClient):
        """Someone approves carol while the first pass talks to Zero."""

        def cluster_settings(self) -> dict[str, Any]:
            generations.append(Resource.objects.get(pk=resource.pk).sync_generation)
            if len(generations) == 1:
                approve("carol@example.com", resource, bob)
            return super().cluster_settings()

    client = ApprovesMidway(sim.url, sim.api_token, sim.organization_id, sim.cluster_id)
    outcome = sync_resource(resource.pk, client=client)

    resource.refresh_from_db()
    # The first pass settled the generation it read before carol's change; the lease
    # holder saw the generation move on and ran a second pass at once.
    assert outcome.passes == 2 and outcome.live == 2
    assert generations == [resource.sync_generation - 1, resource.sync_generation]
    assert outcome.generation == resource.sync_generation
    assert PolicySync.objects.get(resource=resource).synced_generation == resource.sync_generation
    assert sim.evaluate("jit-grafana", "carol@example.com")
    assert sim.write_count == 2  # created with alice, then rewritten with carol
    assert sync_resource(resource.pk).status == UP_TO_DATE  # carol's own task: nothing to do


def test_synced_generation_never_goes_down(resource: Resource, bob: Any) -> None:
    approve("alice@example.com", resource, bob)
    sync_resource(resource.pk)
    PolicySync.objects.filter(resource=resource).update(synced_generation=99)

    outcome = sync_resource(resource.pk, force=True)

    assert outcome.status == SYNCED
    assert PolicySync.objects.get(resource=resource).synced_generation == 99


# --------------------------------------------------------------------------- the lease


def test_a_held_lease_makes_the_sync_busy_without_remote_calls(
    sim: ZeroSimulator, resource: Resource, bob: Any
) -> None:
    approve("alice@example.com", resource, bob)
    PolicySync.objects.create(
        resource=resource,
        lease_owner="other-worker",
        lease_until=timezone.now() + timedelta(seconds=60),
    )

    outcome = sync_resource(resource.pk)

    assert outcome.status == BUSY and sum(sim.calls.values()) == 0
    assert PolicySync.objects.get(resource=resource).lease_owner == "other-worker"
    PolicySync.objects.filter(resource=resource).update(
        lease_until=timezone.now() - timedelta(seconds=1)  # the holder crashed
    )
    assert sync_resource(resource.pk).status == SYNCED
    assert PolicySync.objects.get(resource=resource).lease_until is None


# ------------------------------------------------------------------------------- drift


def test_hand_edit_is_repaired_and_audited_with_the_editor(
    sim: ZeroSimulator, resource: Resource, bob: Any
) -> None:
    approve("alice@example.com", resource, bob)
    sync_resource(resource.pk)
    wanted = ppl.normalize(policy_text(sim, resource))
    sneaky = {"allow": {"and": [{"email": {"is": "mallory@example.com"}}]}}
    sim.hand_edit("jit-grafana", [*wanted, sneaky], by_email="mallory@example.com")
    assert sim.evaluate("jit-grafana", "mallory@example.com")
    assert sync_resource(resource.pk).status == UP_TO_DATE  # nothing changed here...
    before = last_seq()

    outcome = sync_resource(resource.pk, force=True)  # ...the reconcile compares anyway

    assert outcome.drift and outcome.wrote
    assert not sim.evaluate("jit-grafana", "mallory@example.com")
    assert sim.evaluate("jit-grafana", "alice@example.com")
    assert actions(before) == [A.ZERO_DRIFT_REPAIRED]
    event = AuditEvent.objects.get(action=A.ZERO_DRIFT_REPAIRED)
    assert event.details["changed_by"] == ["mallory@example.com"]
    assert event.details["rules_removed"] == [ppl.dumps(sneaky)]
    assert event.details["rules_added"] == []
    assert event.details["expected_digest"] != event.details["before_digest"]
    assert event.actor_label == "system"


def test_console_text_edit_is_drift_too(sim: ZeroSimulator, resource: Resource) -> None:
    sync_resource(resource.pk)
    client = get_client()
    policy = client.find_policy_by_name("jit-grafana")
    assert policy is not None
    client.replace_policy(policy["id"], {**policy, "enforced": True, "remediation": "ask Bob"})

    outcome = sync_resource(resource.pk, force=True)

    assert outcome.drift
    fixed = sim.policy_by_name("jit-grafana")
    assert fixed is not None and fixed["enforced"] is False and LINK in fixed["remediation"]
    event = AuditEvent.objects.get(action=A.ZERO_DRIFT_REPAIRED)
    assert event.details["fields_changed"] == ["remediation", "enforced"]
    assert event.details["changed_by"] == ["api@sim"]


def test_deleted_policy_is_recreated(sim: ZeroSimulator, resource: Resource, bob: Any) -> None:
    approve("alice@example.com", resource, bob)
    first = sync_resource(resource.pk)
    get_client().delete_policy(first.policy_id)
    before = last_seq()

    outcome = sync_resource(resource.pk, force=True)

    assert outcome.created and outcome.policy_id != first.policy_id
    assert sim.evaluate("jit-grafana", "alice@example.com")
    assert actions(before) == [A.ZERO_POLICY_CREATED]
    event = AuditEvent.objects.get(seq__gt=before, action=A.ZERO_POLICY_CREATED)
    assert event.details["replaces_policy_id"] == first.policy_id


def test_existing_policy_found_by_name_is_adopted(
    sim: ZeroSimulator, zero: ZeroClient, resource: Resource
) -> None:
    zero.create_policy({"name": "jit-grafana", "ppl": [ppl.DENY_ALL_RULE]})

    outcome = sync_resource(resource.pk)

    assert not outcome.created and outcome.wrote and not outcome.drift
    assert actions() == [A.ZERO_POLICY_WRITTEN]
    assert AuditEvent.objects.get(action=A.ZERO_POLICY_WRITTEN).details["adopted"] is True
    assert len(sim.state.list_policies(sim.namespace_id)) == 1


# ------------------------------------------------------------ what denied users are told


def test_explanation_and_remediation_send_denied_users_to_the_portal(
    sim: ZeroSimulator, resource: Resource
) -> None:
    sync_resource(resource.pk)

    policy = sim.policy_by_name("jit-grafana")
    assert policy is not None
    assert "just-in-time access grant" in policy["explanation"]
    assert "Grafana admin" in policy["explanation"]
    assert LINK in policy["remediation"]
    assert "jitportal" in policy["description"] and "by hand" in policy["description"]
    assert policy["enforced"] is False
    assert ppl.normalize(policy["ppl"]) == [ppl.DENY_ALL_RULE]


def test_base_rules_stay_first(sim: ZeroSimulator, bob: Any) -> None:
    sre = {"allow": {"and": [{"email": {"ends_with": "@sre.example.com"}}]}}
    resource = ResourceFactory(slug="db", base_ppl=[sre])
    approve("alice@example.com", resource, bob)

    sync_resource(resource.pk)

    rules = ppl.normalize(policy_text(sim, resource))
    assert isinstance(rules, list) and rules[0] == sre and len(rules) == 2
    assert sim.evaluate("jit-db", "oncall@sre.example.com")


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
    assert actions(before) == [A.ZERO_POLICY_WRITTEN, A.GRANT_ENFORCED]
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


def test_changesets_are_applied_when_the_cluster_does_not_auto_apply(
    sim: ZeroSimulator, resource: Resource, bob: Any
) -> None:
    sim.auto_apply = False
    grant = approve("alice@example.com", resource, bob)

    outcome = sync_resource(resource.pk)

    assert len(outcome.applied_changesets) == 1 and not outcome.pending_apply
    assert sim.evaluate("jit-grafana", "alice@example.com")
    assert sim.state.list_changesets(sim.cluster_id, "pending") == []
    assert actions()[-3:] == [A.ZERO_POLICY_CREATED, A.ZERO_CHANGESET_APPLIED, A.GRANT_ENFORCED]
    applied = AuditEvent.objects.get(action=A.ZERO_CHANGESET_APPLIED)
    assert applied.details["changeset_id"] == outcome.applied_changesets[0]
    grant.refresh_from_db()
    assert grant.sync_status == SyncStatus.LIVE


def test_pending_changesets_are_left_and_shown_when_applying_is_off(
    settings: Any, sim: ZeroSimulator, zero: ZeroClient, resource: Resource, bob: Any
) -> None:
    settings.ZERO_APPLY_CHANGESETS = False
    sim.auto_apply = False
    grant = approve("alice@example.com", resource, bob)
    before = last_seq()

    outcome = sync_resource(resource.pk)

    assert outcome.pending_apply
    grant.refresh_from_db()
    assert grant.sync_status == SyncStatus.PENDING_APPLY and grant.live_at is None
    state = PolicySync.objects.get(resource=resource)
    pending = sim.state.list_changesets(sim.cluster_id, "pending")
    assert state.pending_apply and state.pending_changeset_ids == [pending[0]["id"]]
    assert sim.effective_policy("jit-grafana") is None  # Zero enforces nothing yet
    assert actions(before) == [A.ZERO_POLICY_CREATED]

    zero.apply_changeset(pending[0]["id"])  # someone applies it in the console
    after_apply = last_seq()
    outcome = sync_resource(resource.pk, force=True)

    assert not outcome.pending_apply and outcome.live == 1
    grant.refresh_from_db()
    assert grant.sync_status == SyncStatus.LIVE and grant.enforced_at is not None
    assert not PolicySync.objects.get(resource=resource).pending_apply
    assert actions(after_apply) == [A.GRANT_ENFORCED]


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
    assert actions(before) == [A.ZERO_SYNC_FAILED, A.ZERO_POLICY_CREATED, A.GRANT_ENFORCED]


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
