"""People and a resource with one of every reviewable fact, for the access review tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from apps.access.models import Resource
from apps.access.states import GrantState
from tests.access.conftest import csrf_client  # noqa: F401  (a fixture)
from tests.factories import AccessLevelFactory, GrantFactory, ResourceFactory, UserFactory

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SRE_RULE = {"allow": {"and": [{"groups": {"has": "sre"}}]}}
ERIN_RULE = {"allow": {"and": [{"email": {"is": "erin@example.com"}}]}}


@pytest.fixture
def carol() -> Any:
    """An auditor: opens and closes reviews."""
    return UserFactory(username="idp|carol", email="carol@example.com", groups=["compliance"])


@pytest.fixture
def root() -> Any:
    return UserFactory(
        username="idp|root",
        email="root@example.com",
        groups=["portal-admins"],
        is_superuser=True,
        is_staff=True,
    )


# ``bob``, an approver of the resource who reviews its items, is the shared one
# (``tests/support/people.py``).


@pytest.fixture
def eve() -> Any:
    """Also an approver, and an engineer (a requester group): some items concern her."""
    return UserFactory(
        username="idp|eve", email="eve@example.com", groups=["approvers", "engineering"]
    )


@pytest.fixture
def dave() -> Any:
    return UserFactory(username="idp|dave", email="dave@example.com", groups=["engineering"])


def past_grant(resource: Resource, user: Any, *, days_ago: int, hours: int, **kw: Any) -> Any:
    """An expired grant of ``user`` that began ``days_ago`` before NOW and lasted ``hours``."""
    start = NOW - timedelta(days=days_ago)
    return GrantFactory(
        resource=resource,
        request__resource=resource,
        user=user,
        request__requester=user,
        not_before=start,
        expires_at=start + timedelta(hours=hours),
        created_at=start,
        state=GrantState.EXPIRED,
        **kw,
    )


@pytest.fixture
def grafana(dave: Any) -> Resource:
    resource = ResourceFactory(
        slug="grafana",
        name="Grafana admin",
        requester_groups=["engineering", "contractors"],
        approver_groups=["approvers"],
        break_glass_groups=["oncall"],
        auto_approve_rules=[{"group": "oncall", "max_minutes": 60}],
        base_ppl=[SRE_RULE, ERIN_RULE],
        max_duration_minutes=24 * 60,
        duration_choices=[60, 720],
        break_glass_max_minutes=60,
    )
    AccessLevelFactory(resource=resource, slug="read", name="Read-only", rank=1)
    AccessLevelFactory(resource=resource, slug="full", name="Full", rank=2)
    # A long grant (12 h), a short one (1 h), and a break-glass use, all last week.
    past_grant(resource, dave, days_ago=7, hours=12)
    past_grant(resource, UserFactory(email="short@example.com"), days_ago=6, hours=1)
    glass = UserFactory(email="glass@example.com", groups=["oncall"])
    past_grant(resource, glass, days_ago=2, hours=1, is_break_glass=True)
    return resource
