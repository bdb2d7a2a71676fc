"""Helpers shared by the sync tests: approvals through the services, the audit trail."""

from __future__ import annotations

from typing import Any

from apps.access import services
from apps.access.models import Grant, Resource
from apps.audit.models import AuditEvent
from apps.pomerium.actions import ZeroAction
from devtools.zerosim.simulator import ZeroSimulator
from tests.factories import UserFactory

A = ZeroAction  # the sync's own actions; a grant's enforcement is the domain's (AccessAction)


def actions(since: int = 0) -> list[str]:
    """Every audit action after ``since``, in chain order (one entry per domain event)."""
    return list(
        AuditEvent.objects.in_chain_order().filter(seq__gt=since).values_list("action", flat=True)
    )


def last_seq() -> int:
    event = AuditEvent.objects.order_by("-seq").first()
    return event.seq if event else 0


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
