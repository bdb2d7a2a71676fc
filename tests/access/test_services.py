"""Services: new state and the exact audit rows for every transition and every refusal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from apps.access import services
from apps.access.actions import AccessAction
from apps.access.models import AccessRequest, Approval, Grant, GrantExtension, Resource
from apps.access.states import (
    Conflict,
    GrantState,
    IllegalTransition,
    NotAllowed,
    PolicyViolation,
    RequestKind,
    RequestState,
)
from apps.audit import chain
from apps.audit.models import AuditEvent
from tests.factories import GrantFactory, ResourceFactory, UserFactory

# Requests need somebody able to approve them (a request nobody could approve is refused).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("standby_approver")]

T0 = datetime(2026, 11, 23, 10, 7, tzinfo=UTC)


def trail() -> list[tuple[str, str]]:
    """(action, actor) of every entry, in chain order (one per domain event)."""
    return [(e.action, e.actor_label) for e in AuditEvent.objects.in_chain_order()]


@pytest.fixture
def resource() -> Resource:
    return ResourceFactory(slug="grafana", name="Grafana admin", justification_min_length=10)


def submit(user: Any, resource: Resource, **kw: Any) -> AccessRequest:
    kw.setdefault(
        "duration_minutes",
        120 if 120 in resource.duration_choices else resource.duration_choices[0],
    )
    kw.setdefault("justification", "Debugging the checkout outage")
    kw.setdefault("now", T0)
    return services.submit_request(requester=user, resource=resource, **kw)


# --- submit ---------------------------------------------------------------------------------


def test_submit_creates_pending_request_and_one_audit_row(alice: Any, resource: Resource) -> None:
    req = submit(alice, resource, ticket="INC-1")
    assert req.state == RequestState.PENDING
    assert req.expires_at == T0 + timedelta(hours=24)
    assert trail() == [(AccessAction.REQUEST_SUBMITTED, "alice@example.com")]
    event = AuditEvent.objects.get(action=AccessAction.REQUEST_SUBMITTED)
    assert event.resource_slug == "grafana"
    assert event.details["ticket"] == "INC-1"
    assert event.details["duration_minutes"] == 120


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"duration_minutes": 9999}, PolicyViolation),
        ({"duration_minutes": 45}, PolicyViolation),  # not an offered choice
        ({"duration_minutes": 0}, PolicyViolation),
        ({"justification": "short"}, PolicyViolation),
        ({"start_at": T0 - timedelta(minutes=1)}, PolicyViolation),
        ({"start_at": T0 + timedelta(days=90)}, PolicyViolation),
    ],
)
def test_submit_refusals_change_nothing(
    alice: Any, resource: Resource, kwargs: Any, error: type
) -> None:
    with pytest.raises(error):
        submit(alice, resource, **kwargs)
    assert not AccessRequest.objects.exists()
    assert trail() == []


def test_ticket_required(alice: Any) -> None:
    resource = ResourceFactory(ticket_required=True)
    with pytest.raises(PolicyViolation, match="ticket"):
        submit(alice, resource)
    assert submit(alice, resource, ticket="CHG-9").ticket == "CHG-9"


def test_scheduled_start_refused_when_resource_does_not_allow_it(alice: Any) -> None:
    resource = ResourceFactory(allow_scheduled=False)
    with pytest.raises(PolicyViolation):
        submit(alice, resource, start_at=T0 + timedelta(hours=1))


def test_requester_groups_enforced(alice: Any) -> None:
    resource = ResourceFactory(requester_groups=["dba"])
    with pytest.raises(NotAllowed):
        submit(alice, resource)
    assert not AccessRequest.objects.exists()


def test_archived_resource_refuses(alice: Any) -> None:
    with pytest.raises(PolicyViolation, match="archived"):
        submit(alice, ResourceFactory(is_active=False))


def test_second_pending_request_is_refused(alice: Any, resource: Resource) -> None:
    submit(alice, resource)
    with pytest.raises(Conflict, match="pending request"):
        submit(alice, resource)
    assert AccessRequest.objects.count() == 1
    assert trail() == [(AccessAction.REQUEST_SUBMITTED, "alice@example.com")]


def test_request_with_live_grant_becomes_extension_request(
    alice: Any, bob: Any, resource: Resource
) -> None:
    grant = services.approve_request(submit(alice, resource), approver=bob, now=T0)
    assert grant is not None
    second = submit(alice, resource, duration_minutes=60, now=T0 + timedelta(minutes=30))
    assert second.kind == RequestKind.EXTENSION
    assert second.extends_grant == grant
    services.approve_request(second, approver=bob, now=T0 + timedelta(minutes=40))
    grant.refresh_from_db()
    assert grant.expires_at == T0 + timedelta(minutes=180)
    assert Grant.objects.count() == 1  # same grant, one rule, no gap


# --- approve / reject -----------------------------------------------------------------------


def test_clock_starts_at_approval(alice: Any, bob: Any, resource: Resource) -> None:
    req = submit(alice, resource, now=T0 - timedelta(hours=3))
    grant = services.approve_request(req, approver=bob, now=T0)
    assert grant is not None
    assert (grant.not_before, grant.expires_at) == (T0, T0 + timedelta(hours=2))
    assert grant.state == GrantState.ACTIVE
    assert grant.email == "alice@example.com"
    req.refresh_from_db()
    assert (req.state, req.decided_by, req.decided_at) == (RequestState.APPROVED, bob, T0)
    assert trail() == [
        (AccessAction.REQUEST_SUBMITTED, "alice@example.com"),
        (AccessAction.REQUEST_APPROVED, "bob@example.com"),
        (AccessAction.GRANT_ACTIVATED, "bob@example.com"),
    ]
    resource.refresh_from_db()
    assert resource.sync_generation == 1


def test_scheduled_window(alice: Any, bob: Any, resource: Resource) -> None:
    start = T0 + timedelta(days=1)
    grant = services.approve_request(submit(alice, resource, start_at=start), approver=bob, now=T0)
    assert grant is not None
    assert (grant.state, grant.not_before) == (GrantState.SCHEDULED, start)
    assert trail()[-1] == (AccessAction.GRANT_SCHEDULED, "bob@example.com")


def test_approver_may_shorten_not_lengthen(alice: Any, bob: Any, resource: Resource) -> None:
    req = submit(alice, resource)
    with pytest.raises(PolicyViolation):
        services.approve_request(req, approver=bob, duration_minutes=500, now=T0)
    grant = services.approve_request(req, approver=bob, duration_minutes=30, now=T0)
    assert grant is not None and grant.expires_at == T0 + timedelta(minutes=30)


def test_self_approval_refused(resource: Resource) -> None:
    approver = UserFactory(email="self@example.com", groups=["approvers"])
    req = submit(approver, resource)
    with pytest.raises(NotAllowed, match="your own"):
        services.approve_request(req, approver=approver, now=T0)
    with pytest.raises(NotAllowed, match="your own"):
        services.reject_request(req, approver=approver, reason="no", now=T0)
    req.refresh_from_db()
    assert req.state == RequestState.PENDING
    assert not Approval.objects.exists()
    assert trail() == [(AccessAction.REQUEST_SUBMITTED, "self@example.com")]


def test_superuser_cannot_approve_own_request(resource: Resource) -> None:
    root = UserFactory(email="root@example.com", is_superuser=True)
    with pytest.raises(NotAllowed):
        services.approve_request(submit(root, resource), approver=root, now=T0)


def test_non_approver_refused(alice: Any, resource: Resource) -> None:
    outsider = UserFactory(groups=["engineering"])
    req = submit(alice, resource)
    with pytest.raises(NotAllowed, match="not an approver"):
        services.approve_request(req, approver=outsider, now=T0)
    assert not Grant.objects.exists()
    assert len(trail()) == 1


def test_superuser_approves_any_resource(alice: Any, resource: Resource) -> None:
    root = UserFactory(is_superuser=True)
    assert services.approve_request(submit(alice, resource), approver=root, now=T0) is not None


def test_double_approve_refused(alice: Any, bob: Any, resource: Resource) -> None:
    req = submit(alice, resource)
    services.approve_request(req, approver=bob, now=T0)
    with pytest.raises(IllegalTransition):
        services.approve_request(req, approver=bob, now=T0)
    assert Grant.objects.count() == 1
    assert [a for a, _ in trail()].count(AccessAction.REQUEST_APPROVED) == 1


def test_approve_after_cancel_refused(alice: Any, bob: Any, resource: Resource) -> None:
    req = submit(alice, resource)
    services.cancel_request(req, actor=alice, now=T0)
    with pytest.raises(IllegalTransition, match="cancelled"):
        services.approve_request(req, approver=bob, now=T0)
    assert not Grant.objects.exists()
    assert trail() == [
        (AccessAction.REQUEST_SUBMITTED, "alice@example.com"),
        (AccessAction.REQUEST_CANCELLED, "alice@example.com"),
    ]


def test_decide_expired_request_refused(alice: Any, bob: Any, resource: Resource) -> None:
    req = submit(alice, resource)
    later = T0 + timedelta(hours=25)
    with pytest.raises(IllegalTransition, match="expired"):
        services.approve_request(req, approver=bob, now=later)
    services.expire_due(later)
    req.refresh_from_db()
    assert req.state == RequestState.EXPIRED
    with pytest.raises(IllegalTransition):
        services.reject_request(req, approver=bob, reason="late", now=later)
    assert trail() == [
        (AccessAction.REQUEST_SUBMITTED, "alice@example.com"),
        (AccessAction.REQUEST_EXPIRED, "system"),
    ]


def test_reject_needs_reason_and_records_it(alice: Any, bob: Any, resource: Resource) -> None:
    req = submit(alice, resource)
    with pytest.raises(PolicyViolation):
        services.reject_request(req, approver=bob, reason="  ", now=T0)
    services.reject_request(req, approver=bob, reason="Use the read-only role", now=T0)
    req.refresh_from_db()
    assert (req.state, req.decision_reason) == (RequestState.REJECTED, "Use the read-only role")
    assert not Grant.objects.exists()
    assert trail()[-1] == (AccessAction.REQUEST_REJECTED, "bob@example.com")
    assert AuditEvent.objects.get(action=AccessAction.REQUEST_REJECTED).details["reason"] == (
        "Use the read-only role"
    )


def test_only_requester_cancels(alice: Any, bob: Any, resource: Resource) -> None:
    req = submit(alice, resource)
    with pytest.raises(NotAllowed):
        services.cancel_request(req, actor=bob, now=T0)
    services.cancel_request(req, actor=alice, now=T0)
    with pytest.raises(IllegalTransition):
        services.cancel_request(req, actor=alice, now=T0)


# --- grants ---------------------------------------------------------------------------------


@pytest.fixture
def grant(alice: Any, bob: Any, resource: Resource) -> Grant:
    g = services.approve_request(submit(alice, resource), approver=bob, now=T0)
    assert g is not None
    return g


def test_revoke(grant: Grant, bob: Any) -> None:
    services.revoke_grant(grant, actor=bob, reason="Incident closed", now=T0 + timedelta(minutes=5))
    grant.refresh_from_db()
    assert grant.state == GrantState.REVOKED
    assert grant.revoked_by == bob
    assert grant.revoke_reason == "Incident closed"
    assert trail()[-1] == (AccessAction.GRANT_REVOKED, "bob@example.com")
    with pytest.raises(IllegalTransition, match="revoked"):
        services.revoke_grant(grant, actor=bob, reason="again", now=T0)


def test_user_may_end_own_grant_but_stranger_may_not(grant: Grant, alice: Any) -> None:
    with pytest.raises(NotAllowed):
        services.revoke_grant(grant, actor=UserFactory(), reason="x", now=T0)
    services.revoke_grant(grant, actor=alice, reason="Done early", now=T0)
    grant.refresh_from_db()
    assert grant.state == GrantState.REVOKED


def test_only_the_holder_ends_their_own_grant_and_the_reason_is_fixed(
    grant: Grant, alice: Any, bob: Any
) -> None:
    before = trail()
    # bob approves Grafana and may revoke the grant, but it is not his to "end early".
    with pytest.raises(NotAllowed, match="Only the person who holds this access"):
        services.end_own_grant(grant, actor=bob, now=T0)
    grant.refresh_from_db()
    assert grant.state == GrantState.ACTIVE
    assert trail() == before
    services.end_own_grant(grant, actor=alice, now=T0 + timedelta(minutes=5))
    grant.refresh_from_db()
    assert grant.state == GrantState.REVOKED
    assert grant.revoked_by == alice
    assert grant.revoke_reason == "ended early by the user" == services.ENDED_EARLY_REASON
    assert trail()[-1] == (AccessAction.GRANT_REVOKED, "alice@example.com")


def test_extend_within_maximum(grant: Grant, bob: Any) -> None:
    new_end = T0 + timedelta(hours=4)
    services.extend_grant(
        grant, actor=bob, new_expires_at=new_end, reason="Still debugging", now=T0
    )
    grant.refresh_from_db()
    assert grant.expires_at == new_end
    ext = GrantExtension.objects.get()
    assert (ext.old_expires_at, ext.new_expires_at, ext.over_maximum) == (
        T0 + timedelta(hours=2),
        new_end,
        False,
    )
    assert trail()[-1] == (AccessAction.GRANT_EXTENDED, "bob@example.com")


def test_extend_past_maximum_needs_override(grant: Grant, bob: Any) -> None:
    too_far = T0 + timedelta(hours=9)
    with pytest.raises(PolicyViolation, match="maximum"):
        services.extend_grant(grant, actor=bob, new_expires_at=too_far, reason="More", now=T0)
    grant.refresh_from_db()
    assert grant.expires_at == T0 + timedelta(hours=2)
    services.extend_grant(
        grant, actor=bob, new_expires_at=too_far, reason="Major incident", override=True, now=T0
    )
    assert GrantExtension.objects.get().over_maximum is True


def test_nobody_extends_own_grant(grant: Grant, alice: Any) -> None:
    with pytest.raises(NotAllowed):
        services.extend_grant(
            grant, actor=alice, new_expires_at=T0 + timedelta(hours=3), reason="x", now=T0
        )


def test_extend_must_move_later(grant: Grant, bob: Any) -> None:
    with pytest.raises(PolicyViolation):
        services.extend_grant(
            grant, actor=bob, new_expires_at=T0 + timedelta(hours=1), reason="x", now=T0
        )


def test_expire_due_moves_each_row_once(alice: Any, bob: Any, resource: Resource) -> None:
    scheduled = services.approve_request(
        submit(alice, resource, start_at=T0 + timedelta(hours=1)), approver=bob, now=T0
    )
    assert scheduled is not None
    counts = services.expire_due(T0 + timedelta(hours=1, minutes=1))
    assert counts == {"requests_expired": 0, "grants_activated": 1, "grants_expired": 0}
    counts = services.expire_due(T0 + timedelta(hours=3, minutes=1))
    assert counts == {"requests_expired": 0, "grants_activated": 0, "grants_expired": 1}
    assert services.expire_due(T0 + timedelta(hours=4)) == {
        "requests_expired": 0,
        "grants_activated": 0,
        "grants_expired": 0,
    }
    scheduled.refresh_from_db()
    assert scheduled.state == GrantState.EXPIRED
    assert [a for a, _ in trail()][-2:] == [
        AccessAction.GRANT_ACTIVATED,
        AccessAction.GRANT_EXPIRED,
    ]
    assert trail()[-1][1] == "system"


def test_one_open_grant_per_user_and_resource_is_a_database_rule(grant: Grant) -> None:
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        GrantFactory(
            user=grant.user,
            resource=grant.resource,
            request__requester=grant.user,
            request__resource=grant.resource,
        )


# --- quorum, auto-approval, break-glass, on behalf --------------------------------------------


def test_quorum_two_of_three(alice: Any, bob: Any, erin: Any) -> None:
    resource = ResourceFactory(approvals_required=2)
    req = submit(alice, resource)
    assert services.approve_request(req, approver=bob, now=T0) is None
    req.refresh_from_db()
    assert req.state == RequestState.PENDING
    with pytest.raises(Conflict):
        services.approve_request(req, approver=bob, now=T0)  # the same person twice does not count
    grant = services.approve_request(req, approver=erin, now=T0 + timedelta(minutes=1))
    assert grant is not None
    assert [a for a, _ in trail()] == [
        AccessAction.REQUEST_SUBMITTED,
        AccessAction.REQUEST_APPROVAL_RECORDED,
        AccessAction.REQUEST_APPROVED,
        AccessAction.GRANT_ACTIVATED,
    ]
    approved = AuditEvent.objects.get(action=AccessAction.REQUEST_APPROVED)
    assert approved.details["approvers"] == ["bob@example.com", "erin@example.com"]


def test_quorum_rejection_after_one_approval_rejects(alice: Any, bob: Any, erin: Any) -> None:
    resource = ResourceFactory(approvals_required=2)
    req = submit(alice, resource)
    services.approve_request(req, approver=bob, now=T0)
    services.reject_request(req, approver=erin, reason="Not during the freeze", now=T0)
    req.refresh_from_db()
    assert req.state == RequestState.REJECTED
    assert not Grant.objects.exists()


def test_quorum_requesters_own_approval_refused(bob: Any, erin: Any) -> None:
    resource = ResourceFactory(approvals_required=2)
    req = submit(bob, resource)
    with pytest.raises(NotAllowed):
        services.approve_request(req, approver=bob, now=T0)
    assert not Approval.objects.exists()


def test_auto_approval_for_matching_group_and_duration() -> None:
    oncall = UserFactory(email="dave@example.com", groups=["oncall"])
    resource = ResourceFactory(
        duration_choices=[60, 240, 480],
        auto_approve_rules=[{"group": "oncall", "max_minutes": 240}],
    )
    req = submit(oncall, resource, duration_minutes=240)
    req.refresh_from_db()
    assert req.state == RequestState.APPROVED
    assert req.decided_by is None
    assert Grant.objects.get(request=req).state == GrantState.ACTIVE
    assert trail() == [
        (AccessAction.REQUEST_SUBMITTED, "dave@example.com"),
        (AccessAction.REQUEST_AUTO_APPROVED, "system"),
        (AccessAction.GRANT_ACTIVATED, "system"),
    ]
    assert AuditEvent.objects.get(action=AccessAction.REQUEST_AUTO_APPROVED).details["rule"] == {
        "group": "oncall",
        "max_minutes": 240,
    }


def test_auto_approval_longer_duration_stays_pending() -> None:
    oncall = UserFactory(groups=["oncall"])
    resource = ResourceFactory(
        duration_choices=[60, 240, 480],
        auto_approve_rules=[{"group": "oncall", "max_minutes": 240}],
    )
    req = submit(oncall, resource, duration_minutes=480)
    assert req.state == RequestState.PENDING
    assert not Grant.objects.exists()


def test_break_glass() -> None:
    sre = UserFactory(email="sre@example.com", groups=["sre"])
    resource = ResourceFactory(break_glass_groups=["sre"], break_glass_max_minutes=60)
    grant = services.break_glass(
        user=sre,
        resource=resource,
        duration_minutes=30,
        justification="Prod DB is down, paging",
        now=T0,
    )
    assert grant.state == GrantState.ACTIVE and grant.is_break_glass
    assert list(Grant.objects.needing_review()) == [grant]
    assert trail() == [(AccessAction.GRANT_BREAK_GLASS, "sre@example.com")]
    reviewer = UserFactory(email="rev@example.com", groups=["approvers"])
    with pytest.raises(NotAllowed):
        services.mark_reviewed(grant, reviewer=sre, note="fine", now=T0)
    services.mark_reviewed(grant, reviewer=reviewer, note="Justified: INC-77", now=T0)
    assert not Grant.objects.needing_review().exists()
    assert trail()[-1] == (AccessAction.GRANT_REVIEWED, "rev@example.com")


@pytest.mark.parametrize(
    ("groups", "minutes", "error"),
    [(["engineering"], 30, NotAllowed), (["sre"], 120, PolicyViolation)],
)
def test_break_glass_refusals(groups: list[str], minutes: int, error: type) -> None:
    user = UserFactory(groups=groups)
    resource = ResourceFactory(break_glass_groups=["sre"], break_glass_max_minutes=60)
    with pytest.raises(error):
        services.break_glass(
            user=user,
            resource=resource,
            duration_minutes=minutes,
            justification="Prod DB is down, paging",
            now=T0,
        )
    assert not Grant.objects.exists()
    assert trail() == []


def test_an_archived_resource_takes_no_break_glass_and_no_extension() -> None:
    sre = UserFactory(email="sre@example.com", groups=["sre"])
    bob = UserFactory(email="bob@example.com", groups=["approvers"])
    resource = ResourceFactory(break_glass_groups=["sre"], break_glass_max_minutes=60)
    grant = services.break_glass(
        user=sre, resource=resource, duration_minutes=30, justification="DB down, paging", now=T0
    )
    Resource.objects.filter(pk=resource.pk).update(is_active=False)
    other = UserFactory(email="sre2@example.com", groups=["sre"])
    before = trail()

    with pytest.raises(PolicyViolation, match="archived"):
        services.break_glass(
            user=other, resource=resource, duration_minutes=30, justification="DB down again"
        )
    with pytest.raises(PolicyViolation, match="archived"):
        services.extend_grant(
            grant, actor=bob, new_expires_at=grant.expires_at + timedelta(minutes=10), reason="x"
        )

    assert Grant.objects.count() == 1
    assert Grant.objects.get(pk=grant.pk).expires_at == grant.expires_at
    assert trail() == before


def test_on_behalf_request_audits_both_people(alice: Any, bob: Any, resource: Resource) -> None:
    req = services.submit_on_behalf(
        approver=bob,
        user=alice,
        resource=resource,
        duration_minutes=60,
        justification="Incident INC-9 bridge",
        now=T0,
    )
    assert req.state == RequestState.APPROVED
    assert (req.requester, req.filed_by, req.decided_by) == (alice, bob, bob)
    submitted = AuditEvent.objects.get(action=AccessAction.REQUEST_SUBMITTED)
    assert (
        submitted.actor_label,
        submitted.details["requester"],
        submitted.details["filed_by"],
    ) == (
        "bob@example.com",
        "alice@example.com",
        "bob@example.com",
    )
    approved = AuditEvent.objects.get(action=AccessAction.REQUEST_APPROVED)
    assert approved.details["filed_by"] == "bob@example.com"


def test_on_behalf_by_non_approver_refused(alice: Any, resource: Resource) -> None:
    with pytest.raises(NotAllowed):
        services.submit_on_behalf(
            approver=UserFactory(),
            user=alice,
            resource=resource,
            duration_minutes=60,
            justification="Incident bridge",
            now=T0,
        )


# --- the trail itself ---------------------------------------------------------------------


def test_one_chained_entry_per_domain_event_and_chain_verifies(
    alice: Any, bob: Any, resource: Resource
) -> None:
    services.approve_request(submit(alice, resource), approver=bob, now=T0)
    # Exactly the service's entries: no copies of django-auditlog's field history.
    assert list(AuditEvent.objects.in_chain_order().values_list("action", flat=True)) == [
        AccessAction.REQUEST_SUBMITTED,
        AccessAction.REQUEST_APPROVED,
        AccessAction.GRANT_ACTIVATED,
    ]
    from apps.audit.services import event_fields

    result = chain.verify(event_fields(e) for e in AuditEvent.objects.in_chain_order())
    assert result.ok and result.count == AuditEvent.objects.count()


def test_failed_service_leaves_no_audit_row(alice: Any, bob: Any, resource: Resource) -> None:
    req = submit(alice, resource)
    before = AuditEvent.objects.count()
    with pytest.raises(PolicyViolation):
        services.approve_request(req, approver=bob, duration_minutes=-1, now=T0)
    assert AuditEvent.objects.count() == before
