"""End to end against Zero's real contract: services -> on_commit -> Redis -> a real Celery
worker -> the simulator, which validates every body and models changesets, paging caps,
lost answers and rate limits as the contract allows them.

Needs PostgreSQL and Redis (skips locally without them, fails in CI). Outcomes are polled
with a bound; nothing asserts on timing.
"""

from __future__ import annotations

from typing import Any

import pytest

from apps import ppl
from apps.access import services
from apps.access.models import Grant
from apps.access.states import SyncStatus
from apps.audit.models import AuditEvent
from apps.pomerium.actions import ZeroAction
from apps.pomerium.models import PolicySync
from apps.pomerium.tasks import tick as zero_tick
from devtools.zerosim.simulator import ZeroSimulator
from tests.factories import ResourceFactory, UserFactory
from tests.zero.live import approver, converged, evaluates, eventually, in_threads, pending

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

OTHER_RULE = [{"allow": {"and": [{"email": {"is": "mallory@example.com"}}]}}]


def status_of(grant: Grant) -> str:
    return Grant.objects.get(pk=grant.pk).sync_status


def approve_one(resource: Any, email: str, boss: Any) -> Grant:
    user = UserFactory(username=f"idp|{email}", email=email)
    req = services.submit_request(
        requester=user, resource=resource, duration_minutes=60, justification="On call tonight"
    )
    grant = services.approve_request(req, approver=boss)
    assert grant is not None
    return grant


def test_auto_apply_on_approve_is_enforced_for_an_exact_case_email(live: ZeroSimulator) -> None:
    resource = ResourceFactory(slug="grafana")
    grant = approve_one(resource, "First.Last@Corp.com", approver())

    assert eventually(lambda: status_of(grant) == SyncStatus.LIVE), "never live"
    assert live.evaluate("jit-grafana", "First.Last@Corp.com")
    assert not live.evaluate("jit-grafana", "first.last@corp.com")  # Pomerium is exact


def test_auto_apply_off_our_write_alone_is_applied_by_the_portal_then_live(
    live: ZeroSimulator,
) -> None:
    live.auto_apply = False
    live.configure(apply_delay=0.3)  # Zero answers "applying" first
    resource = ResourceFactory(slug="grafana")
    grant = approve_one(resource, "alice@example.com", approver())

    assert eventually(lambda: status_of(grant) == SyncStatus.LIVE), "never live"
    assert live.evaluate("jit-grafana", "alice@example.com")
    assert live.pending_changeset() is None
    assert AuditEvent.objects.filter(action=ZeroAction.ZERO_CHANGESET_APPLIED).count() == 1
    assert not PolicySync.objects.get(resource=resource).pending_apply


def test_auto_apply_off_a_foreign_hand_edit_keeps_the_grant_pending_and_says_why(
    live: ZeroSimulator, superuser: Any
) -> None:
    live.auto_apply = False
    live.hand_create("payroll-admins", OTHER_RULE, by_email="mallory@example.com")
    resource = ResourceFactory(slug="grafana")
    grant = approve_one(resource, "alice@example.com", approver())

    def waiting() -> bool:
        state = PolicySync.objects.filter(resource=resource).first()
        return bool(state and state.pending_apply and "also holds" in state.pending_reason)

    assert eventually(waiting), "the sync did not stop at the foreign change"
    zero_tick()  # the 30-second tick looks again: still not ours to deploy
    assert eventually(lambda: status_of(grant) == SyncStatus.PENDING_APPLY)
    assert not evaluates(live, "jit-grafana", "alice@example.com")
    assert live.pending_changeset() is not None
    assert not AuditEvent.objects.filter(action=ZeroAction.ZERO_CHANGESET_APPLIED).exists()
    page = superuser.get("/admin/zero/policysync/").content.decode()
    assert "NOT YET" in page and "payroll-admins" in page and "mallory@example.com" in page
    grant_page = superuser.get(f"/admin/access/grant/{grant.pk}/change/").content.decode()
    assert "Written, waiting for changeset apply" in grant_page
    assert Grant.objects.get(pk=grant.pk).live_at is None


def test_a_changeset_that_fails_puts_the_grant_in_error_with_the_message(
    live: ZeroSimulator,
) -> None:
    live.auto_apply = False
    live.configure(apply_failure=("failed", "namespace is locked for maintenance"))
    resource = ResourceFactory(slug="grafana")
    grant = approve_one(resource, "alice@example.com", approver())

    assert eventually(lambda: status_of(grant) == SyncStatus.ERROR), "never error"
    grant.refresh_from_db()
    assert "namespace is locked for maintenance" in grant.sync_error
    assert grant.live_at is None
    assert not evaluates(live, "jit-grafana", "alice@example.com")


def test_paging_with_a_server_cap_of_10_finds_the_managed_policy_among_25(
    live: ZeroSimulator,
) -> None:
    live.configure(max_page_size=10)
    for n in range(24):
        live.hand_create(f"team-{n:02}", OTHER_RULE, by_email="ops@example.com")
    live.hand_create("jit-grafana", [ppl.DENY_ALL_RULE], by_email="ops@example.com")
    resource = ResourceFactory(slug="grafana")
    grant = approve_one(resource, "alice@example.com", approver())

    assert eventually(lambda: status_of(grant) == SyncStatus.LIVE), "never live"
    assert len(live.policies_by_name("jit-grafana")) == 1  # adopted, never duplicated
    assert not AuditEvent.objects.filter(action=ZeroAction.ZERO_POLICY_CREATED).exists()
    assert live.evaluate("jit-grafana", "alice@example.com")


def test_lost_answers_are_never_reported_as_someone_elses_edit(live: ZeroSimulator) -> None:
    resources = [ResourceFactory(slug=f"lossy{i}") for i in range(2)]
    boss = approver()
    requests = pending(resources, 30)
    live.set_faults(lost_write_rate=0.3, seed=11)

    grants = in_threads(lambda req: services.approve_request(req, approver=boss), requests)
    # Concurrent passes coalesce, so how many writes the draws meet varies from run to run:
    # revoke in batches until at least one answer was lost (0.7**n makes a third batch rare).
    for batch in (grants[:10], grants[10:20], grants[20:]):
        in_threads(lambda g: services.revoke_grant(g, actor=boss, reason="rotated"), batch)
        if eventually(lambda: live.lost_answer_count > 0, timeout=15):
            break
    assert live.lost_answer_count > 0, "no answer was lost"
    zero_tick()
    assert eventually(lambda: converged(live, resources), timeout=60), "did not converge"
    live.set_faults(lost_write_rate=0.0)
    assert not AuditEvent.objects.filter(action=ZeroAction.ZERO_DRIFT_REPAIRED).exists()
    print(f"\nlost answers: {live.lost_answer_count}; drift entries: 0")


def test_a_revocation_during_a_rate_limit_reaches_zero_after_it_without_a_reconcile(
    live: ZeroSimulator,
) -> None:
    resource = ResourceFactory(slug="grafana")
    boss = approver()
    grant = approve_one(resource, "alice@example.com", boss)
    assert eventually(lambda: status_of(grant) == SyncStatus.LIVE)
    routes_before = live.calls[("GET", "/organizations/{org}/routes")]

    live.set_faults(rate_limit_seconds=6)  # every call answers 429, Retry-After: 1
    services.revoke_grant(grant, actor=boss, reason="incident over")
    assert eventually(lambda: live.rate_limited_count >= 3, timeout=10)
    assert status_of(grant) != SyncStatus.REMOVED
    assert evaluates(live, "jit-grafana", "alice@example.com")  # still in, for now

    # The task's retries back off (Retry-After is only their floor) and the tick keeps
    # going; once the episode ends the removal lands.
    assert eventually(lambda: status_of(grant) == SyncStatus.REMOVED, timeout=60), "not removed"
    assert not live.evaluate("jit-grafana", "alice@example.com")
    # No forced pass ran: the reconcile (which lists routes) was not what delivered it.
    assert live.calls[("GET", "/organizations/{org}/routes")] == routes_before
