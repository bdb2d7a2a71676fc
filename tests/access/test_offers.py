"""Who may ask for what: the rules in SQL decide as the rules in Python do.

``open_to`` and ``breaks_glass`` (``apps.access.models.offers``) are the rules; their SQL
forms must pick the same resources out of a table of cases: empty lists, overlapping and
look-alike group names, archived resources. On SQLite and PostgreSQL (the suite runs on
both), in the query (``ListHasAny``) and in the fallback for other databases.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.access.models import (
    ListHasAny,
    Resource,
    breaks_glass,
    breaks_glass_sql,
    open_to_sql,
)
from apps.access.states import GrantState
from tests.factories import GrantFactory, ResourceFactory, UserFactory

pytestmark = pytest.mark.django_db

GROUP_LISTS = [
    [],
    ["sre"],
    ["sre", "eng"],
    ["eng"],
    ["sre-eu"],  # a longer name is another group, not a match of its prefix
    ["Sre"],  # group names are case-sensitive
    ['O\'Brien "team"'],
    ["ünïcode", "x"],
]
PEOPLES_GROUPS = [
    set(),
    {"sre"},
    {"sre", "eng"},
    {"eng", "unrelated"},
    {"sre-e"},
    {"sre-eu"},
    {"Sre"},
    {'O\'Brien "team"'},
    {"ünïcode"},
    {"unrelated"},
]


@pytest.fixture
def table() -> list[Resource]:
    """Every list as requester groups and as break-glass groups, each active and archived."""
    count = len(GROUP_LISTS)
    return Resource.objects.bulk_create(
        Resource(
            slug=f"o-{i}-{active:d}",
            name=f"O {i} {'active' if active else 'archived'}",
            requester_groups=GROUP_LISTS[i],
            break_glass_groups=GROUP_LISTS[count - 1 - i],
            is_active=active,
        )
        for i in range(count)
        for active in (True, False)
    )


@pytest.fixture(params=["in the query", "elsewhere"])
def where(request: Any, monkeypatch: Any) -> str:
    """How the lists are matched: in the query (``ListHasAny``), or, on a database it does
    not know, by the Python rule over every resource's list, read first."""
    if request.param == "elsewhere":
        monkeypatch.setattr(ListHasAny, "VENDORS", ())
    return str(request.param)


def matched(rule: Any, groups: set[str], where: str) -> set[int]:
    with CaptureQueriesContext(connection) as ctx:
        found = set(
            Resource.objects.active()
            .filter(rule(groups, connection.alias))
            .values_list("pk", flat=True)
        )
    sql = [q["sql"] for q in ctx.captured_queries]
    in_query = [q for q in sql if "?|" in q or "json_each" in q]
    if where == "in the query":
        assert len(sql) <= 1, sql  # none when no group can match
        assert len(in_query) == len(sql) if groups else not in_query, sql
    else:
        assert 1 <= len(sql) <= 2 and not in_query, sql
    return found


@pytest.mark.parametrize("groups", PEOPLES_GROUPS, ids=lambda g: ",".join(sorted(g)) or "none")
def test_the_query_offers_what_the_rules_offer(
    table: list[Resource], where: str, groups: set[str]
) -> None:
    person = UserFactory(username="idp|o", email="o@example.com")
    requestable = {r.pk for r in table if r.may_request(person, groups)}
    emergency = {r.pk for r in table if r.is_active and breaks_glass(r.break_glass_groups, groups)}

    assert matched(open_to_sql, groups, where) == requestable
    assert matched(breaks_glass_sql, groups, where) == emergency
    # The table decides something: archived resources never, empty lists as they say.
    archived = {r.pk for r in table if not r.is_active}
    assert not (requestable | emergency) & archived
    assert Resource.objects.get(slug="o-0-1").pk in requestable  # no requester group: everyone
    assert Resource.objects.get(slug="o-7-1").pk not in emergency  # no break-glass group: nobody


def test_the_dashboard_offers_what_the_rules_offer(table: list[Resource], signed_in: Any) -> None:
    client, person = signed_in("olga", groups=["sre", "eng"])
    groups = person.group_names()
    held = Resource.objects.get(slug="o-6-1")  # break-glass groups ["sre"]
    GrantFactory(request__requester=person, request__resource=held, state=GrantState.ACTIVE)
    expected = sorted(
        (r.name, r.slug)
        for r in table
        if r.is_active and breaks_glass(r.break_glass_groups, groups) and r != held
    )

    response = client.get("/")

    assert response.context["requestable"] == sum(r.may_request(person, groups) for r in table)
    assert response.context["requestable"] == 4  # [], ["sre"], ["sre", "eng"], ["eng"]
    assert [(o.name, o.slug) for o in response.context["break_glass"]] == expected
    assert [slug for _, slug in expected] == ["o-4-1", "o-5-1"]  # by name, the held one left out
    for _, slug in expected:
        assert f'href="/break-glass/{slug}"' in response.content.decode()


def test_a_page_with_nothing_held_says_how_many_it_offers(signed_in: Any) -> None:
    ResourceFactory(slug="everyone", requester_groups=[])
    ResourceFactory(slug="sre-only", requester_groups=["sre"])
    ResourceFactory(slug="archived", requester_groups=[], is_active=False)
    one, _ = signed_in("una", groups=["eng"])
    two, _ = signed_in("tom", groups=["sre"])

    assert "to one of 1 resource.</p>" in one.get("/").content.decode()
    assert "to one of 2 resources.</p>" in two.get("/").content.decode()
