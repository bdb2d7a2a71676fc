"""Every API list answers a page: at most ``limit`` rows, the next page named in ``Link``.

Pages are keyset-cursored (``apps/api/paging.py``): walking them yields every row once, in
order; a page costs the same queries at the first row and behind thousands; a cursor that
is not one the API gave is a structured 400.
"""

from __future__ import annotations

import re
from datetime import timedelta
from itertools import count
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.access.models import AccessRequest, Grant, Resource
from apps.access.states import GrantState, RequestState
from apps.accounts.models import User

from .conftest import error

pytestmark = pytest.mark.django_db

serial = count()
LINK = re.compile(r'^<(?P<url>[^>]+)>; rel="next"$')


def bulk_history(user: User, n: int, *, same_time: bool = False) -> None:
    """``n`` decided requests with ended grants, plus as many pending requests of others.

    With ``same_time`` all rows share one timestamp, so only the id orders them.
    """
    resources = Resource.objects.bulk_create(
        Resource(slug=f"p-{i}", name=f"P {i}", approver_groups=["approvers"])
        for i in (next(serial) for _ in range(3))
    )
    now = timezone.now()
    times = [now - timedelta(minutes=0 if same_time else i) for i in range(n)]
    mine = AccessRequest.objects.bulk_create(
        AccessRequest(
            requester=user,
            filed_by=user,
            resource=resources[i % 3],
            duration_minutes=60,
            justification="Investigating INC-1234 in production",
            state=RequestState.APPROVED,
            created_at=at,
            expires_at=at + timedelta(hours=24),
        )
        for i, at in enumerate(times)
    )
    Grant.objects.bulk_create(
        Grant(
            request=r,
            user=user,
            email=user.email,
            resource=r.resource,
            not_before=r.created_at,
            expires_at=r.created_at + timedelta(hours=1),
            state=GrantState.EXPIRED,
            created_at=r.created_at,
        )
        for r in mine
    )
    people = User.objects.bulk_create(
        User(username=f"idp|page{i}", email=f"page{i}@example.com")
        for i in (next(serial) for _ in range(n))
    )
    AccessRequest.objects.bulk_create(
        AccessRequest(
            requester=person,
            filed_by=person,
            resource=resources[i % 3],
            duration_minutes=60,
            justification="Investigating INC-1234 in production",
            created_at=at,
            expires_at=now + timedelta(hours=24),
        )
        for i, (person, at) in enumerate(zip(people, times, strict=True))
    )


def walk(api: Any, path: str, **params: Any) -> tuple[list[dict[str, Any]], list[int]]:
    """Every row of a list, page by page by its Link headers; and each page's query count."""
    rows: list[dict[str, Any]] = []
    counts = []
    url: str | None = "/api/v1" + path
    query: dict[str, Any] = params
    while url is not None:
        with CaptureQueriesContext(connection) as ctx:
            response = api.client.get(url, query)
        assert response.status_code == 200, response.content
        counts.append(len(ctx.captured_queries))
        rows.extend(response.json())
        link = response.get("Link")
        if link is None:
            assert "X-Next-Cursor" not in response
            url = None
            continue
        match = LINK.match(link)
        assert match, link
        parts = urlsplit(match["url"])
        url, query = parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}
        assert query["cursor"] == response["X-Next-Cursor"]
    return rows, counts


@pytest.mark.parametrize("same_time", [False, True])
@pytest.mark.parametrize(
    ("path", "params", "order"),
    [
        ("/requests", {}, "newest"),
        ("/requests", {"state": "approved"}, "newest"),
        ("/grants", {}, "newest"),
        ("/grants", {"scope": "all"}, "newest"),
        ("/pending", {}, "oldest"),
    ],
)
def test_pages_yield_every_row_once_in_order(
    api_as: Any, path: str, params: dict[str, str], order: str, same_time: bool
) -> None:
    api = api_as("alice", groups=["engineering", "approvers"])
    user = api.user()
    bulk_history(user, 25, same_time=same_time)

    rows, counts = walk(api, path, limit=10, **params)

    assert len(rows) == 25
    assert len(counts) == 3 and len(set(counts)) == 1, counts  # 10 + 10 + 5, same cost each
    ids = [r["id"] for r in rows]
    assert len(set(ids)) == 25
    key = "not_before" if path == "/grants" else "created_at"
    keys = [(r[key], r["id"]) for r in rows]
    assert keys == sorted(keys, reverse=order == "newest")


SCALES = (1, 200, 3000)


@pytest.mark.parametrize("path", ["/requests", "/grants", "/pending"])
def test_a_page_costs_the_same_whatever_the_history(api_as: Any, path: str) -> None:
    api = api_as("alice", groups=["engineering", "approvers"])
    user = api.user()
    counts = []
    have = 0
    for n in SCALES:
        bulk_history(user, n - have)
        have = n
        with CaptureQueriesContext(connection) as ctx:
            first = api.get(path, limit=50)
        assert first.status_code == 200
        counts.append(len(ctx.captured_queries))
        assert len(first.json()) == min(n, 50)
        if n > 50:
            # The last page, reached by its cursor, costs what the first one did.
            oldest = first.json()[-1]
            assert "cursor=" in first["Link"]
            with CaptureQueriesContext(connection) as ctx:
                later = api.client.get(
                    "/api/v1" + path, {"limit": 50, "cursor": first["X-Next-Cursor"]}
                )
            assert later.status_code == 200 and later.json()[0]["id"] != oldest["id"]
            counts.append(len(ctx.captured_queries))
        else:
            assert "Link" not in first
    assert counts == [counts[0]] * len(counts), counts


@pytest.mark.parametrize(
    "cursor",
    [
        "x",
        "!!!",
        "bm90IGEgY3Vyc29y",  # base64 of "not a cursor"
        "MjAyNi0wMS0wMVQwMDowMDowMHwx",  # a time without a zone, id 1
        "MjAyNi0wMS0wMVQwMDowMDowMCswMDowMHww",  # id 0
        "MjAyNi0xMy0wMVQwMDowMDowMCswMDowMHwx",  # month 13
        # Forged at the edges of Python's range: year 0 and 10000 in UTC (a 500 on SQLite).
        "MDAwMS0wMS0wMVQwMDowMDowMCswNTowMHwx",  # 0001-01-01T00:00:00+05:00, id 1
        "OTk5OS0xMi0zMVQyMzo1OTo1OS0wNTowMHwx",  # 9999-12-31T23:59:59-05:00, id 1
        "A" * 201,
    ],
)
@pytest.mark.parametrize("path", ["/requests", "/grants", "/pending"])
def test_a_bad_cursor_is_a_400_naming_it(api_as: Any, path: str, cursor: str) -> None:
    api = api_as("alice", groups=["engineering", "approvers"])
    response = api.get(path, cursor=cursor)
    assert response.status_code == 400, response.content
    body = error(response)
    assert body["code"] == "validation_error"
    assert set(body["fields"]) == {"query.cursor"}, body


@pytest.mark.parametrize("limit", ["0", "501", "-1", "ten"])
def test_the_page_size_has_a_maximum(api_as: Any, limit: str) -> None:
    api = api_as("alice", groups=["engineering"])
    response = api.get("/requests", limit=limit)
    assert response.status_code == 400
    assert error(response)["code"] == "validation_error"


def test_a_cursor_only_pages_through_ones_own_rows(api_as: Any) -> None:
    alice = api_as("alice", groups=["engineering"])
    mallory = api_as("mallory", groups=["engineering"])
    bulk_history(alice.user(), 3)
    first = alice.get("/requests", limit=1)
    cursor = first["X-Next-Cursor"]
    mallory.user()
    assert mallory.get("/requests", cursor=cursor).json() == []
