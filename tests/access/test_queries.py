"""N+1 guards: the dashboard and the admin changelists cost the same at 1 and at 200 rows.

Rows are bulk-created (no per-row signals or audit): these tests count the queries of
reading pages, not of writing the data.
"""

from __future__ import annotations

from datetime import timedelta
from itertools import count
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.access.models import AccessRequest, Grant, Resource
from apps.access.states import GrantState, RequestState, SyncStatus
from apps.accounts.models import User

pytestmark = pytest.mark.django_db

serial = count()


def queries(client: Any, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries)


def resources(n: int, **fields: Any) -> list[Resource]:
    return Resource.objects.bulk_create(
        Resource(slug=f"q-{i}", name=f"Q {i}", approver_groups=["approvers"], **fields)
        for i in (next(serial) for _ in range(n))
    )


def users(n: int) -> list[User]:
    return User.objects.bulk_create(
        User(username=f"idp|q{i}", email=f"q{i}@example.com")
        for i in (next(serial) for _ in range(n))
    )


def requests(pairs: list[tuple[User, Resource]], **fields: Any) -> list[AccessRequest]:
    now = timezone.now()
    return AccessRequest.objects.bulk_create(
        AccessRequest(
            requester=user,
            filed_by=user,
            resource=resource,
            duration_minutes=60,
            justification="Investigating INC-1234 in production",
            created_at=now,
            expires_at=now + timedelta(hours=24),
            **fields,
        )
        for user, resource in pairs
    )


def grants(reqs: list[AccessRequest], **fields: Any) -> list[Grant]:
    now = timezone.now()
    return Grant.objects.bulk_create(
        Grant(
            request=req,
            user=req.requester,
            email=req.requester.email,
            resource=req.resource,
            not_before=now,
            expires_at=now + timedelta(hours=1),
            state=GrantState.ACTIVE,
            created_at=now,
            **fields,
        )
        for req in reqs
    )


def add_mine(user: User, n: int) -> None:
    """Per item: a resource I may break glass on, a live grant on it, a pending request."""
    mine = resources(n, break_glass_groups=["oncall"], approvals_required=2)
    approved = requests([(user, r) for r in mine], state=RequestState.APPROVED)
    grants(approved, sync_status=SyncStatus.LIVE, live_at=timezone.now())
    requests([(user, r) for r in mine])


def test_dashboard_is_constant(signed_in: Any) -> None:
    client, user = signed_in("alice", groups=["oncall"])
    add_mine(user, 1)
    resources(1, break_glass_groups=["oncall"])  # a break-glass button to render
    at_one = queries(client, "/")

    add_mine(user, 199)
    at_many = queries(client, "/")

    response = client.get("/")
    assert len(response.context["grants"]) == 200
    assert len(response.context["requests"]) == 50  # the newest 50 are shown
    assert at_one == at_many, (at_one, at_many)


def add_requests(n: int) -> None:
    three = resources(3, approvals_required=2)
    requests([(u, three[i % 3]) for i, u in enumerate(users(n))])


def test_access_request_changelist_is_constant(signed_in: Any) -> None:
    client, _ = signed_in("bob", groups=["approvers"])
    add_requests(1)
    at_one = queries(client, "/admin/access/accessrequest/?all=")

    add_requests(199)
    at_many = queries(client, "/admin/access/accessrequest/?all=")

    response = client.get("/admin/access/accessrequest/?all=")
    assert len(response.context["cl"].result_list) == 200
    assert at_one == at_many, (at_one, at_many)


def add_grants(n: int) -> None:
    three = resources(3)
    reqs = requests(
        [(u, three[i % 3]) for i, u in enumerate(users(n))], state=RequestState.APPROVED
    )
    grants(reqs[::2], is_break_glass=True)
    grants(reqs[1::2])


def test_grant_changelist_is_constant(signed_in: Any) -> None:
    client, _ = signed_in("bob", groups=["approvers"])
    add_grants(1)
    at_one = queries(client, "/admin/access/grant/?all=")

    add_grants(199)
    at_many = queries(client, "/admin/access/grant/?all=")

    response = client.get("/admin/access/grant/?all=")
    assert len(response.context["cl"].result_list) == 200
    assert at_one == at_many, (at_one, at_many)
