"""Issue 27, gap 2: one rule decides who sees which request and grant (``restrict``).

The red team's approver of Grafana read an HR request's confidential justification by its
sequential id on the request page and in the API. Here every page and endpoint that takes a
request or grant id (found from the URLconf, so a new one cannot be left out) is walked as
that approver: each answers exactly as for an id that was never used (404; the admin's
delete page refuses everyone alike), shows nothing of the HR rows and changes nothing. The
requester, the grant's holder, the resource's approvers, auditors and superusers still see
them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import URLResolver, get_resolver
from django.utils import timezone

from apps.access import services
from apps.access.models import (
    AccessLevel,
    AccessRequest,
    Approval,
    Grant,
    GrantExtension,
    Resource,
)
from apps.access.visibility import CHANGE, VIEW
from apps.accounts.models import User
from apps.audit.models import AuditEvent
from apps.pomerium.models import PolicySync
from tests.factories import ResourceFactory

pytestmark = pytest.mark.django_db

SECRET = "confidential: payroll dispute of J. Doe, case HR-7781"
TICKET = "HR-7781"


@dataclass
class World:
    hr: Resource
    grafana: Resource
    request: AccessRequest  # alice's pending HR request
    grant: Grant  # oscar's live HR grant
    mine: AccessRequest  # a Grafana request mallory approves
    missing: int  # an id no request or grant has


@pytest.fixture
def people(signed_in: Any) -> dict[str, tuple[Any, User]]:
    return {
        "alice": signed_in("alice", groups=["engineering"]),
        "oscar": signed_in("oscar", groups=["engineering"]),
        "hank": signed_in("hank", groups=["approvers", "hr-approvers"]),
        "mallory": signed_in("mallory", groups=["approvers", "grafana-approvers"]),
        "carol": signed_in("carol", groups=["compliance"]),
        "root": signed_in("root", groups=["portal-admins"]),
    }


@pytest.fixture
def world(people: dict[str, tuple[Any, User]]) -> World:
    hr = ResourceFactory(
        slug="hr-records", name="HR records", approver_groups=["hr-approvers"], ticket_required=True
    )
    grafana = ResourceFactory(slug="grafana", name="Grafana", approver_groups=["grafana-approvers"])
    AccessLevel.objects.create(resource=hr, slug="full", name="Full", rank=1)
    PolicySync.objects.create(resource=hr, remote_policy_id="pol-hr")
    PolicySync.objects.create(resource=grafana, remote_policy_id="pol-grafana")
    alice, oscar, hank = people["alice"][1], people["oscar"][1], people["hank"][1]
    first = services.submit_request(
        requester=oscar, resource=hr, duration_minutes=60, justification=SECRET, ticket=TICKET
    )
    grant = services.approve_request(first, approver=hank, note="ok")
    assert grant is not None
    services.extend_grant(
        grant, actor=hank, new_expires_at=grant.expires_at + timedelta(minutes=30), reason="more"
    )
    request = services.submit_request(
        requester=alice, resource=hr, duration_minutes=60, justification=SECRET, ticket=TICKET
    )
    mine = services.submit_request(
        requester=alice, resource=grafana, duration_minutes=60, justification="dashboards down"
    )
    top = max(AccessRequest.objects.order_by("-pk").values_list("pk", flat=True)[:1])
    return World(hr, grafana, request, grant, mine, missing=top + 1000)


# --- Every URL that takes a request or grant id ---------------------------------------------


def id_routes() -> set[str]:
    """The URLconf's routes that name a request or grant by id (or any object, by content
    type): the walk below must cover each."""

    def walk(patterns: Any, prefix: str = "") -> Any:
        for p in patterns:
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns, prefix + str(p.pattern))
            else:
                yield prefix + str(p.pattern)

    markers = ("accessrequest/<", "grant/<", "requests/<", "grants/<", "admin/r/<")
    return {r for r in walk(get_resolver().url_patterns) if any(m in r for m in markers)}


@dataclass(frozen=True)
class Call:
    route: str  # as the URLconf spells it
    method: str
    url: str  # with {r} (a request id) or {g} (a grant id)
    data: Any = None
    api: bool = False


NEW_END = (timezone.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
CALLS = [
    # The requester pages.
    Call("requests/<int:pk>", "get", "/requests/{r}"),
    Call("requests/<int:pk>/cancel", "post", "/requests/{r}/cancel"),
    Call("requests/<int:pk>/end", "post", "/requests/{r}/end"),
    Call("requests/<int:pk>/status", "get", "/requests/{r}/status"),
    # The JSON API.
    Call("api/v1/requests/<request_id>", "get", "/api/v1/requests/{r}", api=True),
    Call("api/v1/requests/<request_id>/cancel", "post", "/api/v1/requests/{r}/cancel", {}, True),
    Call(
        "api/v1/requests/<request_id>/approve",
        "post",
        "/api/v1/requests/{r}/approve",
        {"note": "fine"},
        True,
    ),
    Call(
        "api/v1/requests/<request_id>/reject",
        "post",
        "/api/v1/requests/{r}/reject",
        {"reason": "no"},
        True,
    ),
    Call("api/v1/grants/<grant_id>", "get", "/api/v1/grants/{g}", api=True),
    Call("api/v1/grants/<grant_id>/end", "post", "/api/v1/grants/{g}/end", {}, True),
    Call(
        "api/v1/grants/<grant_id>/extension-requests",
        "post",
        "/api/v1/grants/{g}/extension-requests",
        {"duration_minutes": 60, "justification": "still needed for the case"},
        True,
    ),
    Call(
        "api/v1/grants/<grant_id>/revoke",
        "post",
        "/api/v1/grants/{g}/revoke",
        {"reason": "x"},
        True,
    ),
    Call(
        "api/v1/grants/<grant_id>/extend",
        "post",
        "/api/v1/grants/{g}/extend",
        {"expires_at": "2100-01-01T00:00:00Z", "reason": "x", "override": True},
        True,
    ),
    # The admin: pages and the per-object actions (confirmed, as the buttons post them).
    *[
        Call(
            f"admin/access/{model}/<path:object_id>/{page}",
            "get",
            f"/admin/access/{model}/{{{k}}}/{page}",
        )
        for model, k in (("accessrequest", "r"), ("grant", "g"))
        for page in ("change/", "history/", "delete/", "")
    ],
    *[
        Call(
            f"admin/access/accessrequest/<path:object_id>/{slug}/",
            "post",
            f"/admin/access/accessrequest/{{r}}/{slug}/",
            {"apply": "yes", "reason": "x", "note": "x"},
        )
        for slug in ("approve", "reject")
    ],
    *[
        Call(
            f"admin/access/grant/<path:object_id>/{slug}/",
            "post",
            f"/admin/access/grant/{{g}}/{slug}/",
            {"apply": "yes", "reason": "x", "note": "x", "new_end": NEW_END, "override": "on"},
        )
        for slug in ("revoke", "extend", "review")
    ],
    Call("admin/r/<path:content_type_id>/<path:object_id>/", "get", "/admin/r/{ct_r}/{r}/"),
    Call("admin/r/<path:content_type_id>/<path:object_id>/", "get", "/admin/r/{ct_g}/{g}/"),
]


def test_the_walk_covers_every_route_that_takes_a_request_or_grant_id() -> None:
    assert id_routes() == {c.route for c in CALLS}


def state() -> Any:
    """Everything a POST could change: the requests, grants, approvals and the trail."""
    return (
        list(AccessRequest.objects.order_by("pk").values()),
        list(Grant.objects.order_by("pk").values()),
        list(Approval.objects.order_by("pk").values()),
        list(GrantExtension.objects.order_by("pk").values()),
        AuditEvent.objects.count(),
    )


def call(client: Any, c: Call, r: int, g: int) -> Any:
    url = c.url.format(
        r=r,
        g=g,
        ct_r=ContentType.objects.get_for_model(AccessRequest).pk,
        ct_g=ContentType.objects.get_for_model(Grant).pk,
    )
    if c.method == "get":
        return client.get(url, follow=True)
    if c.api:
        return client.post(url, json.dumps(c.data), content_type="application/json")
    return client.post(url, c.data or {}, follow=True)


def answer(response: Any) -> tuple[int, str]:
    """What a caller learns: the status, and for the API its error body."""
    if response.get("Content-Type", "").startswith("application/json"):
        return response.status_code, response.content.decode()
    return response.status_code, ""


@pytest.mark.parametrize("c", CALLS, ids=lambda c: f"{c.method} {c.url}")
def test_an_approver_of_another_resource_gets_what_a_missing_id_gets(
    people: dict[str, tuple[Any, User]], world: World, c: Call
) -> None:
    mallory = people["mallory"][0]
    before = state()
    hidden = call(mallory, c, world.request.pk, world.grant.pk)
    missing = call(mallory, c, world.missing, world.missing)
    assert answer(hidden) == answer(missing)
    # Not found; nobody deletes a request or a grant in the admin, whoever asks.
    assert hidden.status_code == (403 if "delete" in c.url else 404)
    for secret in (SECRET, TICKET, "oscar@example.com", "alice@example.com"):
        assert secret not in hidden.content.decode()
    assert state() == before


def test_the_same_walk_reaches_the_rows_of_the_resource_they_approve(
    people: dict[str, tuple[Any, User]], world: World
) -> None:
    # Not vacuous: the approver of Grafana sees Grafana's request by the same URLs.
    mallory = people["mallory"][0]
    assert "dashboards down" in mallory.get(f"/requests/{world.mine.pk}").content.decode()
    assert mallory.get(f"/api/v1/requests/{world.mine.pk}").json()["id"] == world.mine.pk
    page = mallory.get(f"/admin/access/accessrequest/{world.mine.pk}/change/")
    assert page.status_code == 200 and "dashboards down" in page.content.decode()


@pytest.mark.parametrize("who", ["alice", "oscar", "hank", "carol", "root"])
def test_whom_it_concerns_its_approvers_auditors_and_superusers_see_it(
    people: dict[str, tuple[Any, User]], world: World, who: str
) -> None:
    client = people[who][0]
    request_seen = who in ("alice", "hank", "carol", "root")
    grant_seen = who in ("oscar", "hank", "carol", "root")
    for pk, seen in ((world.request.pk, request_seen), (world.grant.request_id, grant_seen)):
        page = client.get(f"/requests/{pk}")
        assert page.status_code == (200 if seen else 404)
        assert (SECRET in page.content.decode()) is seen
        assert client.get(f"/api/v1/requests/{pk}").status_code == (200 if seen else 404)
    grant = client.get(f"/api/v1/grants/{world.grant.pk}")
    assert grant.status_code == (200 if grant_seen else 404)
    if who in ("hank", "carol", "root"):  # the admin is for approvers and auditors
        for url in (
            f"/admin/access/accessrequest/{world.request.pk}/change/",
            f"/admin/access/grant/{world.grant.pk}/change/",
            f"/admin/access/grant/{world.grant.pk}/history/",
        ):
            assert client.get(url).status_code == 200, url


# --- The lists: the admin's changelists, the Zero sync admin, inlines, the pending list -----


def test_every_admin_list_shows_an_approver_only_their_resources(
    people: dict[str, tuple[Any, User]], world: World
) -> None:
    mallory = people["mallory"][0]
    requests = mallory.get("/admin/access/accessrequest/").context["cl"].result_list
    assert [r.pk for r in requests] == [world.mine.pk]
    assert list(mallory.get("/admin/access/grant/").context["cl"].result_list) == []
    resources = mallory.get("/admin/access/resource/").context["cl"].result_list
    assert [r.slug for r in resources] == ["grafana"]
    # The Zero sync admin had no visibility rule at all.
    syncs = mallory.get("/admin/zero/policysync/")
    assert [s.resource.slug for s in syncs.context["cl"].result_list] == ["grafana"]
    assert "pol-hr" not in syncs.content.decode()
    hr_sync = PolicySync.objects.get(resource=world.hr)
    assert mallory.get(f"/admin/zero/policysync/{hr_sync.pk}/change/").status_code == 404
    assert mallory.get(f"/admin/access/resource/{world.hr.pk}/change/").status_code == 404
    # The API's pending list: only what they may decide.
    pending = mallory.get("/api/v1/pending").json()
    assert [p["id"] for p in pending] == [world.mine.pk]
    # A superuser sees both rows of the Zero sync admin (auditors do not open it at all).
    shown = people["root"][0].get("/admin/zero/policysync/").context["cl"].result_list
    assert sorted(s.resource.slug for s in shown) == ["grafana", "hr-records"]


def test_restrict_is_the_rule(people: dict[str, tuple[Any, User]], world: World) -> None:
    users = {name: user for name, (_, user) in people.items()}
    filed_for = services.submit_on_behalf(
        approver=users["hank"],
        user=users["carol"],
        resource=world.hr,
        duration_minutes=60,
        justification="audit of HR access, INC-9",
        ticket=TICKET,
        approve=False,
    )
    views = {
        name: set(AccessRequest.objects.restrict(user, VIEW).values_list("pk", flat=True))
        for name, user in users.items()
    }
    everything = set(AccessRequest.objects.values_list("pk", flat=True))
    oscars = world.grant.request_id
    assert views == {
        "alice": {world.request.pk, world.mine.pk},
        "oscar": {oscars},
        "hank": {world.request.pk, oscars, filed_for.pk},
        "mallory": {world.mine.pk},
        "carol": everything,
        "root": everything,
    }
    # Whoever filed a request sees it, also once no longer its approver.
    hank = users["hank"]
    hank.groups.clear()
    assert set(AccessRequest.objects.restrict(hank, VIEW).values_list("pk", flat=True)) == {
        filed_for.pk
    }
    # Deciding is for the resource's approvers (and superusers), not auditors or requesters.
    decides = {
        name: set(AccessRequest.objects.restrict(user, CHANGE).values_list("pk", flat=True))
        for name, user in users.items()
        if name != "hank"
    }
    assert decides == {
        "alice": set(),
        "oscar": set(),
        "mallory": {world.mine.pk},
        "carol": set(),
        "root": everything,
    }
    assert list(Grant.objects.restrict(users["oscar"])) == [world.grant]
    assert list(Grant.objects.restrict(users["mallory"])) == []
    assert list(GrantExtension.objects.restrict(users["mallory"])) == []
    assert GrantExtension.objects.restrict(users["oscar"]).count() == 1
    assert list(Approval.objects.restrict(users["mallory"])) == []
    assert list(AccessLevel.objects.restrict(users["mallory"])) == []
    # Someone signed out of the portal (inactive) sees nothing, not even their own.
    User.objects.filter(pk=users["alice"].pk).update(is_active=False)
    users["alice"].refresh_from_db()
    assert not AccessRequest.objects.restrict(users["alice"]).exists()
    with pytest.raises(ValueError, match="Unknown action"):
        AccessRequest.objects.restrict(users["root"], "delete")
