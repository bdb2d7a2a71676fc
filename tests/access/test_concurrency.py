"""Races on PostgreSQL: two approvers decide the same request at the same moment."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

from apps.access import services
from apps.access.actions import AccessAction
from apps.access.models import AccessRequest, Grant
from apps.access.states import AccessError, RequestState
from apps.audit import chain
from apps.audit.models import AuditEvent
from apps.audit.services import event_fields
from tests.factories import ResourceFactory, UserFactory

# Requests need somebody able to approve them (a request nobody could approve is refused).
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("standby_approver"),
]


def race(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls in threads released together; return each result or exception."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int, call: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            results[i] = call()
        except AccessError as exc:
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


@pytest.mark.parametrize("attempt", range(5))
def test_approve_and_reject_at_once_one_decision_wins(attempt: int) -> None:
    resource = ResourceFactory()
    alice = UserFactory(email="alice@example.com")
    bob = UserFactory(email="bob@example.com", groups=["approvers"])
    erin = UserFactory(email="erin@example.com", groups=["approvers"])
    req = services.submit_request(
        requester=alice,
        resource=resource,
        duration_minutes=60,
        justification="Incident INC-42 debugging",
    )
    results = race(
        lambda: services.approve_request(AccessRequest.objects.get(pk=req.pk), approver=bob),
        lambda: services.reject_request(
            AccessRequest.objects.get(pk=req.pk), approver=erin, reason="No"
        ),
    )
    errors = [r for r in results if isinstance(r, AccessError)]
    assert len(errors) == 1, results
    req.refresh_from_db()
    decisions = AuditEvent.objects.filter(
        action__in=[AccessAction.REQUEST_APPROVED, AccessAction.REQUEST_REJECTED]
    )
    assert decisions.count() == 1
    if req.state == RequestState.REJECTED:
        assert not Grant.objects.exists()
        assert decisions.get().action == AccessAction.REQUEST_REJECTED
    else:
        assert req.state == RequestState.APPROVED
        assert Grant.objects.count() == 1
    result = chain.verify(event_fields(e) for e in AuditEvent.objects.in_chain_order())
    assert result.ok, result


def test_double_click_submit_creates_one_request() -> None:
    resource = ResourceFactory()
    alice = UserFactory()
    results = race(
        *[
            (
                lambda: services.submit_request(
                    requester=alice,
                    resource=resource,
                    duration_minutes=60,
                    justification="Double click test",
                )
            )
            for _ in range(4)
        ]
    )
    assert sum(isinstance(r, AccessRequest) for r in results) == 1
    assert AccessRequest.objects.count() == 1


def test_two_approvers_approve_at_once_one_grant() -> None:
    resource = ResourceFactory()
    alice = UserFactory()
    approvers = [UserFactory(groups=["approvers"]) for _ in range(3)]
    req = services.submit_request(
        requester=alice,
        resource=resource,
        duration_minutes=60,
        justification="Concurrent approvals",
    )
    race(
        *[
            (lambda a=a: services.approve_request(AccessRequest.objects.get(pk=req.pk), approver=a))
            for a in approvers
        ]
    )
    assert Grant.objects.count() == 1
    assert AuditEvent.objects.filter(action=AccessAction.REQUEST_APPROVED).count() == 1
