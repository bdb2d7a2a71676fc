"""Issue 24: the requester and resource filters of the request and grant changelists are
searched as the approver types (``apps.kit.admin_autocomplete``), never listed per page view.

The search answers only with people and resources that occur in rows the reader may see
(the one visibility rule, through the model admin's ``get_queryset``): Grafana's approver
finds nobody who only asked for HR records, and an HR requester's id typed into the URL
names nobody on the page.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.access.models import AccessRequest, Grant, Resource
from apps.access.states import GrantState, RequestState
from apps.accounts.models import User
from apps.kit import admin_autocomplete
from tests.factories import ResourceFactory

pytestmark = pytest.mark.django_db

REQUESTS = "/admin/access/accessrequest/"
GRANTS = "/admin/access/grant/"


def ask(user: User, resource: Resource, **fields: Any) -> AccessRequest:
    now = timezone.now()
    return AccessRequest.objects.create(
        requester=user,
        filed_by=user,
        resource=resource,
        duration_minutes=60,
        justification="Investigating INC-1",
        created_at=now,
        expires_at=now + timedelta(hours=24),
        **fields,
    )


def person(name: str) -> User:
    return User.objects.create(username=f"idp|{name}", email=f"{name}@example.com")


@pytest.fixture
def world(signed_in: Any) -> dict[str, Any]:
    grafana = ResourceFactory(slug="grafana", name="Grafana", approver_groups=["grafana-approvers"])
    hr = ResourceFactory(slug="hr-records", name="HR records", approver_groups=["hr-approvers"])
    ann, abe, hal = person("ann"), person("abe"), person("hal")
    ask(ann, grafana)
    ask(abe, grafana)
    ask(abe, hr)
    hr_request = ask(hal, hr, state=RequestState.APPROVED)
    now = timezone.now()
    Grant.objects.create(
        request=hr_request,
        user=hal,
        email=hal.email,
        resource=hr,
        not_before=now,
        expires_at=now + timedelta(hours=1),
        state=GrantState.ACTIVE,
        created_at=now,
    )
    client, _ = signed_in("mallory", groups=["approvers", "grafana-approvers"])
    return {"client": client, "grafana": grafana, "hr": hr, "ann": ann, "abe": abe, "hal": hal}


def search(client: Any, url: str, **params: Any) -> Any:
    response = client.get(url, params)
    assert response.status_code == 200, response.content[:300]
    return response.json()


def test_the_search_finds_only_people_in_rows_the_reader_may_see(world: dict[str, Any]) -> None:
    client = world["client"]
    found = search(client, REQUESTS + "filter-choices/requester/")
    # In the user admin's order (email); hal asked only for HR records.
    assert found == {
        "results": [
            {"id": str(world["abe"].pk), "text": str(world["abe"])},
            {"id": str(world["ann"].pk), "text": str(world["ann"])},
        ],
        "pagination": {"more": False},
    }
    assert search(client, REQUESTS + "filter-choices/requester/", term="hal")["results"] == []
    found = search(client, REQUESTS + "filter-choices/requester/", term="ANN@")
    assert [r["id"] for r in found["results"]] == [str(world["ann"].pk)]
    found = search(client, REQUESTS + "filter-choices/resource/", term="")
    assert [r["text"] for r in found["results"]] == ["Grafana"]
    assert search(client, REQUESTS + "filter-choices/resource/", term="HR")["results"] == []
    # The grant list: mallory sees no Grafana grant, so no resource at all.
    assert search(client, GRANTS + "filter-choices/resource/")["results"] == []


def test_the_search_pages_through_many_people(signed_in: Any) -> None:
    grafana = ResourceFactory(slug="grafana", name="Grafana", approver_groups=["grafana-approvers"])
    people = [person(f"p{i:03}") for i in range(45)]
    for p in people:
        ask(p, grafana)
    client, _ = signed_in("mallory", groups=["approvers", "grafana-approvers"])
    url = REQUESTS + "filter-choices/requester/"
    pages = [search(client, url, term="p", page=n) for n in (1, 2, 3)]
    assert [len(p["results"]) for p in pages] == [20, 20, 5]
    assert [p["pagination"]["more"] for p in pages] == [True, True, False]
    shown = [r["id"] for p in pages for r in p["results"]]
    assert shown == [str(p.pk) for p in people]
    # Constant work per keystroke, whatever the number of people.
    with CaptureQueriesContext(connection) as ctx:
        search(client, url, term="p0", page=1)
    assert len([q for q in ctx.captured_queries if "accounts_user" in q["sql"]]) >= 1
    assert len(ctx.captured_queries) <= 5


@pytest.mark.parametrize("page", ["", "0", "-4", "x", "1e9", "99999999999999999999"])
def test_any_page_or_term_is_answered(world: dict[str, Any], page: str) -> None:
    client = world["client"]
    url = REQUESTS + "filter-choices/requester/"
    found = search(client, url, page=page, term="a" * 500)
    assert found["results"] == [] and found["pagination"] == {"more": False}
    assert len(search(client, url, page=page)["results"]) in (0, 2)


def test_only_the_changelists_filters_can_be_searched(world: dict[str, Any]) -> None:
    client = world["client"]
    for field in ("justification", "filed_by", "level", "nope", "requester__email"):
        assert client.get(REQUESTS + f"filter-choices/{field}/").status_code == 404
    assert client.get(GRANTS + "filter-choices/user/").status_code == 404


def test_people_without_the_admin_get_no_choices(world: dict[str, Any], signed_in: Any) -> None:
    requester, _ = signed_in("rita", groups=["engineering"])
    response = requester.get(REQUESTS + "filter-choices/requester/")
    assert response.status_code in (302, 403)
    assert b"ann@example.com" not in response.content


def test_a_chosen_id_outside_the_readers_rows_names_nobody(world: dict[str, Any]) -> None:
    client, hal = world["client"], world["hal"]
    response = client.get(REQUESTS, {"requester__id__exact": hal.pk})
    assert response.status_code == 200
    page = response.content.decode()
    assert list(response.context["cl"].result_list) == []
    assert hal.email not in page
    assert "None of the rows you can see." in page


def test_choosing_keeps_the_other_filters_and_drops_the_page(world: dict[str, Any]) -> None:
    client, ann = world["client"], world["ann"]
    response = client.get(REQUESTS, {"state__exact": "pending", "p": "1", "o": "1"})
    page = response.content.decode()
    form = page[page.index('<form method="get" class="autocomplete-filter">') :]
    form = form[: form.index("</form>")]
    assert '<input type="hidden" name="state__exact" value="pending">' in form
    assert '<input type="hidden" name="o" value="1">' in form
    assert 'name="p"' not in form
    chosen = client.get(REQUESTS, {"state__exact": "pending", "requester__id__exact": ann.pk})
    assert [r.requester_id for r in chosen.context["cl"].result_list] == [ann.pk]


def test_the_filter_scripts_are_on_the_changelist(world: dict[str, Any]) -> None:
    page = world["client"].get(REQUESTS).content.decode()
    for script in admin_autocomplete.filter_media()._js:
        assert script.rsplit("/", 1)[-1].split(".")[0] in page
    assert "js/admin-filters" in page
