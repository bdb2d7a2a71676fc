"""apps.pomerium.sync against the simulator over real HTTP: changesets as Zero has them,
emails as Pomerium matches them, paging, duplicates, lost answers, overdue revocations."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone

from apps import ppl
from apps.access import services
from apps.access.actions import AccessAction
from apps.access.models import Grant, Resource
from apps.access.states import SyncStatus
from apps.audit.models import AuditEvent
from apps.pomerium.client import get_client
from apps.pomerium.models import PolicySync, RemovalAlert
from apps.pomerium.sync import (
    FAILED,
    SYNCED,
    UP_TO_DATE,
    flag_overdue_removals,
    resources_to_tick,
    sync_resource,
)
from apps.pomerium.tasks import APPLY_RECHECK, MAX_RETRY_AFTER, backoff
from devtools.zerosim.simulator import ZeroSimulator
from tests.zero.helpers import A, actions, approve, last_seq

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("zero_settings")]

OTHER_RULE = [{"allow": {"and": [{"email": {"is": "mallory@example.com"}}]}}]


def wait_until(check: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


# ------------------------------------------------------------------------ emails


def test_the_rule_carries_the_email_exactly_and_pomerium_matches_it(
    sim: ZeroSimulator, resource: Resource, bob: Any
) -> None:
    grant = approve("First.Last@Corp.com", resource, bob)
    assert grant.email == "First.Last@Corp.com"
    assert sync_resource(resource.pk).status == SYNCED
    policy = sim.policy_by_name("jit-grafana")
    assert policy is not None
    assert {"email": {"is": "First.Last@Corp.com"}} in ppl.normalize(policy["ppl"])[0]["allow"][
        "and"
    ]
    assert sim.evaluate("jit-grafana", "First.Last@Corp.com")
    assert not sim.evaluate("jit-grafana", "first.last@corp.com")  # Pomerium is exact


# -------------------------------------------------------------------- auto-apply on


def test_with_auto_apply_a_write_is_enforced_in_three_calls_and_proven_by_its_entry(
    sim: ZeroSimulator, resource: Resource, bob: Any
) -> None:
    approve("alice@example.com", resource, bob)
    sync_resource(resource.pk)  # creates the policy
    grant = approve("carol@example.com", resource, bob)
    before = sim.calls.copy()

    outcome = sync_resource(resource.pk)

    assert outcome.live == 1 and not outcome.pending_apply
    calls = sim.calls - before
    # GET policy, PUT policy, the write's activity entry (applied.at): no settings read.
    assert sum(calls.values()) == 3, calls
    assert calls[("GET", "/organizations/{org}/activityLogs")] == 1
    grant.refresh_from_db()
    assert grant.sync_status == SyncStatus.LIVE
    assert PolicySync.objects.get(resource=resource).confirmed_by == "activity"
    assert sim.evaluate("jit-grafana", "carol@example.com")


def test_auto_apply_turned_off_at_run_time_never_makes_a_grant_live_from_memory(
    settings: Any, sim: ZeroSimulator, resource: Resource, bob: Any
) -> None:
    """Gap 16: the client has read ``autoApplyChangesets: true`` (and would remember it for
    30 s); the operator turns it off; the next write waits in a changeset, and its grant
    must not be live until that changeset is applied."""
    settings.ZERO_APPLY_CHANGESETS = False  # a human applies changesets here
    approve("alice@example.com", resource, bob)
    assert sync_resource(resource.pk).live == 1
    assert get_client().auto_apply_changesets()  # the setting as read, now remembered
    sim.auto_apply = False  # the operator turns auto-apply off in the console
    sim.state.apply_delay = 0
    grant = approve("carol@example.com", resource, bob)

    outcome = sync_resource(resource.pk)

    assert outcome.live == 0 and outcome.pending_apply
    grant.refresh_from_db()
    assert grant.sync_status == SyncStatus.PENDING_APPLY and grant.live_at is None
    assert "waits for someone to apply it" in grant.sync_error
    assert not sim.evaluate("jit-grafana", "carol@example.com")
    assert resource.pk in resources_to_tick()  # the tick keeps looking

    changeset = sim.state.pending_changeset()
    assert changeset is not None
    sim.console_apply(changeset["id"], by_email="ops@example.com")
    assert sync_resource(resource.pk).live == 1  # what the tick runs: now proven
    grant.refresh_from_db()
    assert grant.sync_status == SyncStatus.LIVE
    assert PolicySync.objects.get(resource=resource).confirmed_by == "changeset"
    assert resource.pk not in resources_to_tick()


def test_a_settings_read_after_the_write_stands_in_while_the_log_lags_and_is_rechecked(
    sim: ZeroSimulator, resource: Resource, bob: Any
) -> None:
    sim.state.activity_delay = 60.0  # entries show up in the log a minute late
    grant = approve("alice@example.com", resource, bob)
    before = sim.calls.copy()

    outcome = sync_resource(resource.pk)

    # No entry yet: a settings read made after the write says writes apply at once.
    assert outcome.live == 1
    assert (sim.calls - before)[("GET", "/organizations/{org}/clusters/{cluster}/settings")] == 1
    state = PolicySync.objects.get(resource=resource)
    assert state.confirmed_by == "settings"
    assert resource.pk in resources_to_tick()  # not proven: the tick re-checks it
    assert sync_resource(resource.pk).status == SYNCED  # not skipped as settled

    sim.state.activity_delay = 0.0  # the log catches up
    assert sync_resource(resource.pk).status == SYNCED
    assert PolicySync.objects.get(resource=resource).confirmed_by == "activity"
    assert resource.pk not in resources_to_tick()
    assert sync_resource(resource.pk).status == UP_TO_DATE
    grant.refresh_from_db()
    assert grant.sync_status == SyncStatus.LIVE


def test_with_the_log_lagging_and_auto_apply_off_nothing_is_confirmed(
    sim: ZeroSimulator, resource: Resource, bob: Any
) -> None:
    sim.auto_apply = False
    sim.state.activity_delay = 60.0
    grant = approve("alice@example.com", resource, bob)

    outcome = sync_resource(resource.pk)

    assert outcome.pending_apply and outcome.live == 0
    assert "shows no write of this policy yet" in outcome.pending_reason
    grant.refresh_from_db()
    assert grant.sync_status == SyncStatus.PENDING_APPLY


# ------------------------------------------------------------------- auto-apply off


def test_our_write_alone_in_the_changeset_is_applied_by_the_portal_then_live(
    sim: ZeroSimulator, resource: Resource, bob: Any
) -> None:
    sim.auto_apply = False
    sim.state.apply_delay = 0
    grant = approve("alice@example.com", resource, bob)
    before = last_seq()

    outcome = sync_resource(resource.pk)

    assert len(outcome.applied_changesets) == 1 and not outcome.pending_apply
    assert sim.state.pending_changeset() is None
    assert sim.evaluate("jit-grafana", "alice@example.com")
    assert actions(before) == [
        A.ZERO_POLICY_CREATED,
        A.ZERO_CHANGESET_APPLIED,
        AccessAction.GRANT_ENFORCED,
    ]
    applied = AuditEvent.objects.get(action=A.ZERO_CHANGESET_APPLIED)
    assert applied.details["changeset_id"] == outcome.applied_changesets[0]
    grant.refresh_from_db()
    assert grant.sync_status == SyncStatus.LIVE


def test_a_changeset_still_applying_waits_and_is_rechecked_until_applied(
    sim: ZeroSimulator, resource: Resource, bob: Any
) -> None:
    sim.auto_apply = False
    sim.state.apply_delay = 0.2
    grant = approve("alice@example.com", resource, bob)

    first = sync_resource(resource.pk)

    assert first.pending_apply and first.applying and first.live == 0
    grant.refresh_from_db()
    assert grant.sync_status == SyncStatus.PENDING_APPLY and grant.live_at is None
    assert "is being applied" in PolicySync.objects.get(resource=resource).pending_reason
    assert APPLY_RECHECK <= 1.0  # the task re-checks this soon, not at the next tick

    assert wait_until(lambda: sim.effective_policy("jit-grafana") is not None)
    again = sync_resource(resource.pk)  # pending_apply on the row makes it look again

    assert again.live == 1 and not again.pending_apply
    grant.refresh_from_db()
    assert grant.sync_status == SyncStatus.LIVE
    assert not PolicySync.objects.get(resource=resource).pending_reason


def test_a_foreign_change_in_the_changeset_is_never_applied_and_the_admin_says_why(
    sim: ZeroSimulator, resource: Resource, bob: Any, superuser: Any
) -> None:
    sim.auto_apply = False
    sim.state.apply_delay = 0
    sim.state.hand_create("payroll-admins", OTHER_RULE, by_email="mallory@example.com")
    grant = approve("alice@example.com", resource, bob)
    before = last_seq()

    outcome = sync_resource(resource.pk)

    assert outcome.pending_apply and outcome.applied_changesets == []
    pending = sim.state.pending_changeset()
    assert pending is not None  # still pending: the portal did not deploy mallory's change
    assert sim.effective_policy("jit-grafana") is None
    grant.refresh_from_db()
    assert grant.sync_status == SyncStatus.PENDING_APPLY and grant.live_at is None
    state = PolicySync.objects.get(resource=resource)
    assert state.pending_apply and state.pending_changeset_ids == [pending["id"]]
    assert "also holds 1 change(s) the portal did not make" in state.pending_reason
    assert "'payroll-admins' by mallory@example.com" in state.pending_reason
    assert "a human must review and apply it in the Zero console" in state.pending_reason
    assert actions(before) == [A.ZERO_POLICY_CREATED, A.ZERO_CHANGESET_WAITING]
    waiting = AuditEvent.objects.get(action=A.ZERO_CHANGESET_WAITING)
    assert waiting.details["foreign_count"] == 1

    page = superuser.get("/admin/zero/policysync/").content.decode()
    assert "NOT YET" in page and "payroll-admins" in page

    # Checked again: still waiting, audited once per changeset, never live.
    again_seq = last_seq()
    assert sync_resource(resource.pk).pending_apply
    assert actions(again_seq) == []
    grant.refresh_from_db()
    assert grant.sync_status == SyncStatus.PENDING_APPLY

    # A human reviews and applies it in the console: the next pass sees it enforced.
    sim.state.apply_changeset(pending["id"], {"id": "u-h", "email": "h@example.com"})
    assert sync_resource(resource.pk).live == 1
    grant.refresh_from_db()
    assert grant.sync_status == SyncStatus.LIVE


def test_a_failed_changeset_puts_the_grants_in_error_with_zeros_message(
    settings: Any, sim: ZeroSimulator, resource: Resource, bob: Any
) -> None:
    settings.ZERO_APPLY_CHANGESETS = False
    sim.auto_apply = False
    grant = approve("alice@example.com", resource, bob)
    first = sync_resource(resource.pk)
    assert first.pending_apply
    assert "ZERO_APPLY_CHANGESETS is off" in first.pending_reason
    pending = sim.state.pending_changeset()
    assert pending is not None
    sim.state.fail_changeset(pending["id"], "rejected", "route grafana has no certificate")
    before = last_seq()

    outcome = sync_resource(resource.pk)

    assert outcome.status == FAILED and not outcome.transient
    assert "rejected: route grafana has no certificate" in outcome.error
    grant.refresh_from_db()
    assert grant.sync_status == SyncStatus.ERROR
    assert "route grafana has no certificate" in grant.sync_error
    assert actions(before) == [A.ZERO_SYNC_FAILED]
    assert sim.effective_policy("jit-grafana") is None  # the failed write never took effect


# ------------------------------------------------------------------ paging, duplicates


def test_paging_with_a_server_cap_finds_the_managed_policy_among_many(
    sim: ZeroSimulator, resource: Resource, bob: Any
) -> None:
    sim.state.max_page_size = 10
    for n in range(24):
        sim.state.hand_create(f"aaa-{n:02}", OTHER_RULE, by_email="ops@example.com")
    sim.state.hand_create("jit-grafana", [ppl.DENY_ALL_RULE], by_email="ops@example.com")
    approve("alice@example.com", resource, bob)
    writes = sim.write_count

    outcome = sync_resource(resource.pk)

    assert outcome.status == SYNCED and not outcome.created  # adopted, not duplicated
    assert sim.write_count == writes + 1  # one PUT
    assert (
        len([p for p in sim.state.list_policies(sim.namespace_id) if p["name"] == "jit-grafana"])
        == 1
    )
    assert sim.evaluate("jit-grafana", "alice@example.com")


def test_duplicate_policies_are_refused_loudly_and_never_picked(
    sim: ZeroSimulator, resource: Resource, bob: Any, superuser: Any
) -> None:
    sim.state.allow_duplicate_names = True
    sim.state.hand_create("jit-grafana", OTHER_RULE, by_email="ops@example.com")
    sim.state.hand_create("jit-grafana", OTHER_RULE, by_email="ops@example.com")
    grant = approve("alice@example.com", resource, bob)
    writes = sim.write_count

    outcome = sync_resource(resource.pk)

    assert outcome.status == FAILED and not outcome.transient
    assert "2 Zero policies are named 'jit-grafana'" in outcome.error
    assert sim.write_count == writes  # neither one was written
    state = PolicySync.objects.get(resource=resource)
    assert len(state.duplicate_policy_ids) == 2
    grant.refresh_from_db()
    assert grant.sync_status == SyncStatus.ERROR
    page = superuser.get("/admin/zero/policysync/").content.decode()
    assert "DUPLICATE POLICIES" in page


def test_a_reconcile_flags_duplicates_even_when_it_knows_its_own_policy(
    sim: ZeroSimulator, resource: Resource, bob: Any
) -> None:
    sim.state.allow_duplicate_names = True
    approve("alice@example.com", resource, bob)
    assert sync_resource(resource.pk).status == SYNCED
    sim.state.hand_create("jit-grafana", OTHER_RULE, by_email="ops@example.com")

    outcome = sync_resource(resource.pk, force=True)

    assert outcome.status == SYNCED  # it keeps using the id it created
    assert len(PolicySync.objects.get(resource=resource).duplicate_policy_ids) == 2


# ----------------------------------------------------------------- overdue revocations


@pytest.mark.usefixtures("eager_celery")
def test_an_unconfirmed_revocation_is_flagged_once_and_approvers_are_told(
    sim: ZeroSimulator,
    resource: Resource,
    bob: Any,
    settings: Any,
    superuser: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.ZERO_REMOVAL_ALERT_SECONDS = 120
    grant = approve("alice@example.com", resource, bob)
    assert sync_resource(resource.pk).live == 1
    sim.set_faults(error_rate=1.0)  # Zero is down from here on
    revoked_at = timezone.now() - timedelta(minutes=3)
    services.revoke_grant(grant, actor=bob, reason="left the team", now=revoked_at)
    assert sync_resource(resource.pk).status == FAILED
    assert resource.pk in resources_to_tick()  # the 30-second tick keeps trying
    mail.outbox.clear()
    before = last_seq()

    with django_capture_on_commit_callbacks(execute=True):
        assert flag_overdue_removals() == 1
    assert flag_overdue_removals() == 0  # once per grant

    assert actions(before) == [A.ZERO_REMOVAL_OVERDUE]
    entry = AuditEvent.objects.get(action=A.ZERO_REMOVAL_OVERDUE)
    assert entry.details["email"] == "alice@example.com"
    assert entry.details["seconds_since_revocation"] >= 180
    assert RemovalAlert.objects.filter(grant=grant).count() == 1
    assert [m.to for m in mail.outbox] == [["bob@example.com"]]
    assert "Revocation not yet enforced" in mail.outbox[0].subject
    page = superuser.get("/admin/access/grant/").content.decode()
    assert "REVOCATION NOT YET ENFORCED" in page
    overdue = superuser.get("/admin/access/grant/?removal=overdue").content.decode()
    assert "alice@example.com" in overdue

    sim.set_faults(error_rate=0.0)
    assert sync_resource(resource.pk).removed == 1
    assert resource.pk not in resources_to_tick()
    grant.refresh_from_db()
    assert grant.sync_status == SyncStatus.REMOVED
    assert (
        "REVOCATION NOT YET ENFORCED" not in superuser.get("/admin/access/grant/").content.decode()
    )


def test_a_fresh_revocation_is_not_overdue(resource: Resource, bob: Any) -> None:
    grant = approve("alice@example.com", resource, bob)
    services.revoke_grant(grant, actor=bob, reason="done")
    assert flag_overdue_removals() == 0
    assert not Grant.objects.get(pk=grant.pk).removal_is_overdue(timezone.now())


# ---------------------------------------------------------------------- retry policy


@pytest.mark.parametrize(
    ("failures", "retry_after", "at_least", "at_most"),
    [
        (0, None, 1.0, 1.5),
        (0, 1.0, 1.0, 1.5),  # Retry-After 1 s does not shorten the backoff
        (5, 1.0, 32.0, 48.0),  # ... nor replace it: attempt 6 still waits 32 s or more
        (0, 10.0, 10.0, 10.0 + 1.5),  # but it is a floor
        (0, 10_000.0, MAX_RETRY_AFTER, MAX_RETRY_AFTER),  # capped
    ],
)
def test_retry_after_is_a_floor_under_the_backoff(
    failures: int, retry_after: float | None, at_least: float, at_most: float
) -> None:
    for _ in range(20):
        delay = backoff(failures, retry_after)
        assert at_least <= delay <= at_most


def test_a_reconcile_resubmits_a_write_whose_changeset_failed(
    settings: Any, sim: ZeroSimulator, resource: Resource, bob: Any
) -> None:
    sim.auto_apply = False
    sim.state.apply_delay = 0
    settings.ZERO_APPLY_CHANGESETS = False
    grant = approve("alice@example.com", resource, bob)
    sync_resource(resource.pk)
    pending = sim.state.pending_changeset()
    assert pending is not None
    sim.state.fail_changeset(pending["id"], "failed", "cluster busy")
    assert sync_resource(resource.pk).status == FAILED  # a plain pass reports it
    settings.ZERO_APPLY_CHANGESETS = True
    before = last_seq()

    outcome = sync_resource(resource.pk, force=True)

    assert outcome.status == SYNCED and outcome.live == 1
    assert actions(before) == [
        A.ZERO_POLICY_WRITTEN,
        A.ZERO_CHANGESET_APPLIED,
        AccessAction.GRANT_ENFORCED,
    ]
    assert AuditEvent.objects.filter(action=A.ZERO_POLICY_WRITTEN).last().details["resubmitted"]
    grant.refresh_from_db()
    assert grant.sync_status == SyncStatus.LIVE
    assert sim.evaluate("jit-grafana", "alice@example.com")
