"""apps.pomerium.sync against the Zero simulator over real HTTP: approvals, revocations,
coalescing, the lease, drift, and what denied users are told."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from apps import ppl
from apps.access import services
from apps.access.actions import AccessAction
from apps.access.models import Resource
from apps.access.states import SyncStatus
from apps.audit.models import AuditEvent
from apps.pomerium import sync as sync_module
from apps.pomerium.client import ZeroClient, get_client
from apps.pomerium.models import PolicySync
from apps.pomerium.sync import (
    BUSY,
    MAX_PASSES,
    SYNCED,
    UP_TO_DATE,
    desired_policy,
    sync_resource,
)
from devtools.zerosim.simulator import ZeroSimulator
from tests.factories import ResourceFactory
from tests.zero.helpers import A, actions, approve, last_seq, policy_text

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("zero_settings")]

LINK = "https://jit.example.com/requests/new?resource=grafana"


# --------------------------------------------------------------------- approve and revoke


def test_approval_reaches_zero_and_the_window_is_enforced(
    sim: ZeroSimulator, resource: Resource, bob: Any
) -> None:
    grant = approve("Alice@Example.com", resource, bob)
    before = last_seq()

    outcome = sync_resource(resource.pk)

    assert outcome.status == SYNCED and outcome.created and outcome.live == 1
    # The rule names the email exactly as the assertion carried it; Pomerium is exact.
    assert sim.evaluate("jit-grafana", "Alice@Example.com")
    assert not sim.evaluate("jit-grafana", "alice@example.com")
    assert not sim.evaluate("jit-grafana", "Alice@Example.com", grant.expires_at)
    assert not sim.evaluate("jit-grafana", "mallory@example.com")
    grant.refresh_from_db()
    assert grant.sync_status == SyncStatus.LIVE
    assert grant.live_at is not None and grant.enforced_at == grant.live_at
    assert actions(before) == [A.ZERO_POLICY_CREATED, AccessAction.GRANT_ENFORCED]
    enforced = AuditEvent.objects.get(action=AccessAction.GRANT_ENFORCED)
    assert enforced.details["email"] == "Alice@Example.com"  # Grant.email, as carried
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
    assert actions(before) == [A.ZERO_POLICY_WRITTEN, AccessAction.GRANT_ENFORCED]
    written = AuditEvent.objects.get(action=A.ZERO_POLICY_WRITTEN)
    assert written.details["rules_removed_count"] == 1
    assert "alice@example.com" in written.details["rules_removed"][0]
    assert written.details["before_digest"] != written.details["after_digest"]
    assert written.details["adopted"] is False
    removal = AuditEvent.objects.filter(action=AccessAction.GRANT_ENFORCED).order_by("-seq").first()
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
    from apps.notifications import tasks as notification_tasks

    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(notification_tasks.notify, "delay", lambda **kw: sent.append(kw))
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
    assert actions(before) == [A.ZERO_POLICY_WRITTEN, AccessAction.GRANT_ENFORCED]
    enforced = (
        AuditEvent.objects.filter(action=AccessAction.GRANT_ENFORCED).order_by("-seq").first()
    )
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
    # What Zero stores is the same structure, serialised byte for byte the same.
    assert ppl.dumps(policy_text(sim, resource)) == ppl.dumps(first)
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


def test_steady_state_approval_costs_get_put_its_entry_and_no_token(
    sim: ZeroSimulator, resource: Resource, bob: Any
) -> None:
    approve("alice@example.com", resource, bob)
    sync_resource(resource.pk)  # warms the process-wide client (token, namespace, settings)
    approve("carol@example.com", resource, bob)
    client = get_client()
    calls_before = client.calls.copy()

    outcome = sync_resource(resource.pk)

    delta = client.calls - calls_before
    assert outcome.wrote and outcome.calls == 3
    # Enforcement is proven by the write's own activity entry (applied.at), never by a
    # remembered auto-apply setting: one read, and no settings call.
    assert delta == {
        ("GET", "/organizations/{org}/policies/{id}"): 1,
        ("PUT", "/organizations/{org}/policies/{id}"): 1,
        ("GET", "/organizations/{org}/activityLogs"): 1,
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

        def _seen(self) -> None:
            generations.append(Resource.objects.get(pk=resource.pk).sync_generation)
            if len(generations) == 1:
                approve("carol@example.com", resource, bob)

        def find_policies_by_name(self, name: str) -> list[dict[str, Any]]:
            self._seen()  # the first pass looks the policy up by name, then creates it
            return super().find_policies_by_name(name)

        def get_policy(self, policy_id: str) -> dict[str, Any]:
            self._seen()  # the second pass reads it by id
            return super().get_policy(policy_id)

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


_real_sleep = time.sleep


class ApprovesEveryPass(ZeroClient):
    """Someone approves one more person while each pass reads the policy (a burst that keeps
    arriving); each read can also take ``read_seconds``, a slow Zero."""

    resource: Resource
    approver: Any
    read_seconds = 0.0
    approved = 0

    def _during_pass(self) -> None:
        if self.read_seconds:
            _real_sleep(self.read_seconds)
        self.approved += 1
        approve(f"late{self.approved}@example.com", self.resource, self.approver)

    def find_policies_by_name(self, name: str) -> list[dict[str, Any]]:
        self._during_pass()
        return super().find_policies_by_name(name)

    def get_policy(self, policy_id: str) -> dict[str, Any]:
        self._during_pass()
        return super().get_policy(policy_id)


@pytest.mark.parametrize("read_seconds", [0.0, 0.08])
def test_a_burst_that_keeps_arriving_is_written_once_per_settle_window(
    sim: ZeroSimulator,
    resource: Resource,
    bob: Any,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    read_seconds: float,
) -> None:
    settings.ZERO_SYNC_SETTLE_SECONDS = 0.05
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        _real_sleep(seconds)

    monkeypatch.setattr(sync_module.time, "sleep", sleep)
    approve("alice@example.com", resource, bob)
    client = ApprovesEveryPass(sim.url, sim.api_token, sim.organization_id, sim.cluster_id)
    client.resource, client.approver, client.read_seconds = resource, bob, read_seconds

    outcome = sync_resource(resource.pk, client=client)

    # Every pass found one more approval, so the holder ran every pass it may, one write each.
    assert outcome.passes == MAX_PASSES and sim.write_count == MAX_PASSES
    # The holder waits only for what is left of the window, counted from the previous
    # pass's start: never more than the window, and nothing after a pass slower than it.
    assert len(waits) == MAX_PASSES - 1 and all(0.0 <= w <= 0.05 for w in waits)
    if read_seconds > settings.ZERO_SYNC_SETTLE_SECONDS:
        assert waits == [0.0] * (MAX_PASSES - 1)
    # The late approvals after the last pass are left for their own tasks, which find the
    # generation moved on and write again.
    assert sync_resource(resource.pk).status == SYNCED


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
    (policy,) = client.find_policies_by_name("jit-grafana")
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
