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


@pytest.fixture
def bob() -> Any:
    """An approver of the resource: reviews its items."""
    return UserFactory(username="idp|bob", email="bob@example.com", groups=["approvers"])


@pytest.fixture
def eve() -> Any:
    """Also an approver, and an engineer (a requester group): some items concern her."""
    return UserFactory(
        username="idp|eve", email="eve@example.com", groups=["approvers", "engineering"]
    )


@pytest.fixture
def dave() -> Any:
    return UserFactory(username="idp|dave", email="dave@example.com", groups=["engineering"])


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
    GrantFactory(
        resource=resource,
        request__resource=resource,
        user=dave,
        request__requester=dave,
        not_before=NOW - timedelta(days=7),
        expires_at=NOW - timedelta(days=7) + timedelta(hours=12),
        state=GrantState.EXPIRED,
    )
    short = UserFactory(email="short@example.com")
    GrantFactory(
        resource=resource,
        request__resource=resource,
        user=short,
        request__requester=short,
        not_before=NOW - timedelta(days=6),
        expires_at=NOW - timedelta(days=6) + timedelta(hours=1),
        state=GrantState.EXPIRED,
    )
    glass = UserFactory(email="glass@example.com", groups=["oncall"])
    GrantFactory(
        resource=resource,
        request__resource=resource,
        user=glass,
        request__requester=glass,
        not_before=NOW - timedelta(days=2),
        expires_at=NOW - timedelta(days=2) + timedelta(hours=1),
        created_at=NOW - timedelta(days=2),
        state=GrantState.EXPIRED,
        is_break_glass=True,
    )
    return resource
