"""Issue 11, as the insider tried it: each attack replayed against the services, now failing.

Each test states the attack, then the new outcome and the exact audit rows.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from apps.access import services
from apps.access.actions import AccessAction
from apps.access.models import AccessRequest, Approval, Grant, GrantExtension, Resource
from apps.access.states import Conflict, NotAllowed, PolicyViolation, RequestKind, RequestState
from apps.accounts.actions import AccountAction
from apps.audit.models import AuditEvent
from tests.factories import ResourceFactory, UserFactory

# Requests need somebody able to approve them (a request nobody could approve is refused).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("standby_approver")]

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def trail(since: int = 0) -> list[tuple[str, str]]:
    """(action, actor) of every entry after ``since``, in chain order."""
    return [
        (e.action, e.actor_label) for e in AuditEvent.objects.in_chain_order().filter(seq__gt=since)
    ]


def head() -> int:
    last = AuditEvent.objects.order_by("-seq").first()
    return last.seq if last else 0


def submit(user: Any, resource: Resource, minutes: int, at: datetime) -> AccessRequest:
    return services.submit_request(
        requester=user,
        resource=resource,
        duration_minutes=minutes,
        justification="on call: paging incident INC-42",
        now=at,
    )


def window_minutes(grant: Grant) -> float:
    grant.refresh_from_db()
    return (grant.expires_at - grant.not_before).total_seconds() / 60


@pytest.fixture
def oncall() -> Any:
    return UserFactory(username="idp|olga", email="olga@example.com", groups=["oncall"])


# --- 1. Extensions never pass the resource maximum -----------------------------------------


def test_six_chained_auto_approved_extensions_stop_at_the_first_window(oncall: Any) -> None:
    # The attack: rule "<= 60 min", maximum 240, six 60-minute requests -> one 360-minute grant.
    resource = ResourceFactory(
        slug="billing",
        duration_choices=[60],
        max_duration_minutes=240,
        auto_approve_rules=[{"group": "oncall", "max_minutes": 60}],
    )
    outcomes = []
    for i in range(6):
        try:
            outcomes.append(submit(oncall, resource, 60, T0 + timedelta(minutes=i)).state)
        except Conflict:
            outcomes.append("conflict")
    # The first is auto-approved. The second would make a 120-minute window, which the
    # 60-minute rule does not cover: it waits for a person. The rest find it pending.
    assert outcomes == [RequestState.APPROVED, RequestState.PENDING] + ["conflict"] * 4
    grant = Grant.objects.get()
    assert window_minutes(grant) == 60
    assert GrantExtension.objects.count() == 0
    assert trail() == [
        (AccessAction.REQUEST_SUBMITTED, "olga@example.com"),
        (AccessAction.REQUEST_AUTO_APPROVED, "system"),
        (AccessAction.GRANT_ACTIVATED, "system"),
        (AccessAction.REQUEST_SUBMITTED, "olga@example.com"),
    ]
    pending = AccessRequest.objects.get(state=RequestState.PENDING)
    assert pending.kind == RequestKind.EXTENSION and pending.extends_grant == grant


def test_auto_approved_extensions_with_a_wide_rule_end_at_the_maximum(
    oncall: Any, bob: Any
) -> None:
    resource = ResourceFactory(
        slug="billing",
        duration_choices=[60],
        max_duration_minutes=240,
        auto_approve_rules=[{"group": "oncall", "max_minutes": 240}],
    )
    states = [submit(oncall, resource, 60, T0 + timedelta(minutes=i)).state for i in range(5)]
    assert states == [RequestState.APPROVED] * 4 + [RequestState.PENDING]
    grant = Grant.objects.get()
    assert window_minutes(grant) == 240
    extended = AuditEvent.objects.filter(action=AccessAction.GRANT_EXTENDED).order_by("seq")
    assert [(e.actor_label, e.details["over_maximum"]) for e in extended] == [("system", False)] * 3
    # A person cannot approve the fifth either: it would go past the maximum.
    before = head()
    with pytest.raises(PolicyViolation, match=r"past .* maximum of 240 minutes"):
        services.approve_request(
            AccessRequest.objects.get(state=RequestState.PENDING),
            approver=bob,
            now=T0 + timedelta(minutes=10),
        )
    assert window_minutes(grant) == 240
    assert trail(before) == []


def test_a_human_approved_maximum_plus_an_auto_extension_stays_at_the_maximum(
    oncall: Any, bob: Any
) -> None:
    # The attack: a human-approved 240-minute grant plus one auto-approved extension -> 300.
    resource = ResourceFactory(
        slug="billing",
        duration_choices=[60, 240],
        max_duration_minutes=240,
        auto_approve_rules=[{"group": "oncall", "max_minutes": 60}],
    )
    first = submit(oncall, resource, 240, T0)
    services.approve_request(first, approver=bob, now=T0)
    before = head()
    extension = submit(oncall, resource, 60, T0 + timedelta(minutes=5))
    assert extension.state == RequestState.PENDING
    assert window_minutes(Grant.objects.get()) == 240
    assert trail(before) == [(AccessAction.REQUEST_SUBMITTED, "olga@example.com")]
    # The approver may shorten it to what is left (nothing), or override on the grant.
    with pytest.raises(PolicyViolation, match=r"\(0 minutes are left\)"):
        services.approve_request(extension, approver=bob, now=T0 + timedelta(minutes=6))


def test_going_past_the_maximum_takes_a_human_override_with_a_reason(oncall: Any, bob: Any) -> None:
    resource = ResourceFactory(slug="billing", duration_choices=[240], max_duration_minutes=240)
    grant = services.approve_request(submit(oncall, resource, 240, T0), approver=bob, now=T0)
    assert grant is not None
    later = grant.expires_at + timedelta(minutes=30)
    with pytest.raises(PolicyViolation, match="override with a reason"):
        services.extend_grant(grant, actor=bob, new_expires_at=later, reason="still on fire")
    with pytest.raises(PolicyViolation, match="Say why"):
        services.extend_grant(grant, actor=bob, new_expires_at=later, reason=" ", override=True)
    before = head()
    services.extend_grant(
        grant, actor=bob, new_expires_at=later, reason="still on fire", override=True, now=T0
    )
    assert window_minutes(grant) == 270
    assert trail(before) == [(AccessAction.GRANT_EXTENDED, "bob@example.com")]
    event = AuditEvent.objects.get(action=AccessAction.GRANT_EXTENDED)
    assert event.details["over_maximum"] is True and event.details["reason"] == "still on fire"
    assert GrantExtension.objects.get().over_maximum is True


def test_break_glass_never_exceeds_the_resource_maximum(oncall: Any) -> None:
    # A resource saved around its validation (e.g. straight in the database).
    resource = ResourceFactory(
        slug="billing",
        duration_choices=[30],
        max_duration_minutes=30,
        break_glass_groups=["oncall"],
        break_glass_max_minutes=60,
    )
    with pytest.raises(PolicyViolation, match="at most 30 minutes"):
        services.break_glass(
            user=oncall,
            resource=resource,
            duration_minutes=60,
            justification="prod database down, paging",
            now=T0,
        )
    assert Grant.objects.count() == 0 and trail() == []


def test_extensions_of_a_break_glass_grant_keep_the_maximum(oncall: Any) -> None:
    resource = ResourceFactory(
        slug="billing",
        duration_choices=[60],
        max_duration_minutes=90,
        break_glass_groups=["oncall"],
        break_glass_max_minutes=60,
        auto_approve_rules=[{"group": "oncall", "max_minutes": 240}],
    )
    services.break_glass(
        user=oncall,
        resource=resource,
        duration_minutes=60,
        justification="prod database down, paging",
        now=T0,
    )
    req = submit(oncall, resource, 60, T0 + timedelta(minutes=1))
    assert req.state == RequestState.PENDING  # 120 minutes would pass the maximum of 90
    assert window_minutes(Grant.objects.get()) == 60


# --- 3. Separation of duties by person, not by account --------------------------------------


@pytest.fixture
def lookalike() -> Any:
    """A second account of appa@example.test, as rows older than the email key could be."""
    return UserFactory(
        username="idp|other-sub", email="AppA@Example.Test", email_key=None, groups=["approvers"]
    )


def test_a_case_variant_account_cannot_approve(lookalike: Any) -> None:
    appa = UserFactory(username="idp|appa", email="appa@example.test", groups=["approvers"])
    resource = ResourceFactory(slug="billing", duration_choices=[60])
    req = submit(appa, resource, 60, T0)
    before = head()
    with pytest.raises(NotAllowed, match="your own request"):
        services.approve_request(req, approver=lookalike, now=T0)
    with pytest.raises(NotAllowed, match="your own request"):
        services.reject_request(req, approver=lookalike, reason="no", now=T0)
    assert Approval.objects.count() == 0 and trail(before) == []


def test_two_lookalike_accounts_do_not_meet_a_quorum_of_two(lookalike: Any) -> None:
    erin = UserFactory(username="idp|erin", email="erin@example.test", groups=["approvers"])
    twin = UserFactory(
        username="idp|erin-2", email="ERIN@example.test", email_key=None, groups=["approvers"]
    )
    requester = UserFactory(username="idp|req", email="req@example.test")
    resource = ResourceFactory(slug="billing", duration_choices=[60], approvals_required=2)
    req = submit(requester, resource, 60, T0)
    assert services.approve_request(req, approver=erin, now=T0) is None
    before = head()
    assert services.approve_request(req, approver=twin, now=T0) is None
    req.refresh_from_db()
    assert req.state == RequestState.PENDING and Grant.objects.count() == 0
    assert trail(before) == [(AccessAction.REQUEST_APPROVAL_RECORDED, "ERIN@example.test")]
    event = AuditEvent.objects.filter(action=AccessAction.REQUEST_APPROVAL_RECORDED).latest("seq")
    assert event.details["approvals"] == 1
    assert event.details["not_counted"] == [
        {"approver": "ERIN@example.test", "reason": "the same person as an earlier approval"}
    ]


def test_on_behalf_of_oneself_under_another_case_is_refused(lookalike: Any) -> None:
    appa = UserFactory(username="idp|appa", email="appa@example.test", groups=["approvers"])
    resource = ResourceFactory(slug="billing", duration_choices=[60], approver_groups=["approvers"])
    with pytest.raises(NotAllowed, match="File your own requests"):
        services.submit_on_behalf(
            approver=lookalike,
            user=appa,
            resource=resource,
            duration_minutes=60,
            justification="for myself, twice",
            now=T0,
        )
    assert AccessRequest.objects.count() == 0


# --- 6. Quorum counts only approvers who still may decide -----------------------------------


def test_a_stale_approvers_approval_does_not_count(bob: Any) -> None:
    carol = UserFactory(username="idp|carol", email="carol@example.com", groups=["approvers"])
    dave = UserFactory(username="idp|dave", email="dave@example.com", groups=["approvers"])
    requester = UserFactory(username="idp|req", email="req@example.com")
    resource = ResourceFactory(slug="billing", duration_choices=[60], approvals_required=2)
    req = submit(requester, resource, 60, T0)
    assert services.approve_request(req, approver=bob, now=T0) is None
    # Bob leaves the approvers group (the next assertion mirrors it).
    bob.groups.set([])
    before = head()
    assert services.approve_request(req, approver=carol, now=T0) is None
    req.refresh_from_db()
    assert req.state == RequestState.PENDING
    assert trail(before) == [(AccessAction.REQUEST_APPROVAL_RECORDED, "carol@example.com")]
    recorded = AuditEvent.objects.filter(action=AccessAction.REQUEST_APPROVAL_RECORDED).latest(
        "seq"
    )
    assert recorded.details == {
        "approvals": 1,
        "required": 2,
        "note": "",
        "conditions": {"duration_minutes": None, "level": None},
        "not_counted": [
            {"approver": "bob@example.com", "reason": "no longer an approver of the resource"}
        ],
    }
    before = head()
    grant = services.approve_request(req, approver=dave, now=T0)
    assert grant is not None
    assert trail(before) == [
        (AccessAction.REQUEST_APPROVED, "dave@example.com"),
        (AccessAction.GRANT_ACTIVATED, "dave@example.com"),
    ]
    approved = AuditEvent.objects.get(action=AccessAction.REQUEST_APPROVED)
    assert approved.details["approvers"] == ["carol@example.com", "dave@example.com"]


def test_a_deactivated_approvers_approval_does_not_count(bob: Any) -> None:
    carol = UserFactory(username="idp|carol", email="carol@example.com", groups=["approvers"])
    requester = UserFactory(username="idp|req", email="req@example.com")
    resource = ResourceFactory(slug="billing", duration_choices=[60], approvals_required=2)
    req = submit(requester, resource, 60, T0)
    services.approve_request(req, approver=bob, now=T0)
    type(bob).objects.filter(pk=bob.pk).update(is_active=False)
    assert services.approve_request(req, approver=carol, now=T0) is None
    assert Grant.objects.count() == 0


# --- 7. Email changes move open grants ------------------------------------------------------


def test_an_email_change_moves_open_grants_in_the_same_transaction(bob: Any) -> None:
    from apps.accounts.assertion import Identity
    from apps.accounts.services import sync_user

    alice = sync_user(Identity(sub="idp|alice", email="alice@example.com", name="", groups=()))
    resource = ResourceFactory(slug="billing", duration_choices=[60])
    grant = services.approve_request(submit(alice, resource, 60, T0), approver=bob, now=T0)
    assert grant is not None
    ended = ResourceFactory(slug="old", duration_choices=[60])
    old = services.approve_request(submit(alice, ended, 60, T0), approver=bob, now=T0)
    assert old is not None
    services.revoke_grant(old, actor=bob, reason="done", now=T0)
    generation = Resource.objects.get(pk=resource.pk).sync_generation
    before = head()

    sync_user(Identity(sub="idp|alice", email="Alice.Smith@example.com", name="", groups=()))

    grant.refresh_from_db()
    assert grant.email == "Alice.Smith@example.com"  # exactly as the assertion carries it
    assert Grant.objects.get(pk=old.pk).email == "alice@example.com"  # ended: history kept
    assert Resource.objects.get(pk=resource.pk).sync_generation == generation + 1
    assert trail(before) == [
        (AccessAction.GRANT_EMAIL_CHANGED, "Alice.Smith@example.com"),
        (AccountAction.USER_UPDATED, "Alice.Smith@example.com"),
    ]
    moved = AuditEvent.objects.get(action=AccessAction.GRANT_EMAIL_CHANGED)
    assert moved.details["old_email"] == "alice@example.com"
    assert moved.details["new_email"] == "Alice.Smith@example.com"
    assert moved.target_id == str(grant.pk) and moved.resource_slug == "billing"
