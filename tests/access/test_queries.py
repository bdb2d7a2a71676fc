"""Pages that stay fast whatever the history: the same queries at 1, 200 and 10,000 rows.

The dashboard and every admin changelist (requests, grants, resources, Zero sync, audit
trail) are read as the role that works with them, and cost the same number of queries with
1 row, 200 rows and 10,000 rows behind them; every list on them is bounded or paginated.
Rows are bulk-created (no per-row signals or audit): these tests count the queries of
reading pages, not of writing the data.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from itertools import count
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.template import Context, Template
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.timezone import override as tz_override

from apps.access import reach
from apps.access.actions import AccessAction
from apps.access.models import AccessRequest, Grant, Resource
from apps.access.states import GrantState, RequestState, SyncStatus
from apps.accounts.models import User
from apps.audit.models import AuditEvent
from apps.pomerium.models import PolicySync

pytestmark = pytest.mark.django_db

SCALES = (1, 200, 10_000)
serial = count()


def queries(client: Any, url: str) -> tuple[int, Any]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, response.content[:500]
    return len(ctx.captured_queries), response


def at_each_scale(
    client: Any, url: str, grow_to: Callable[[int], None], expect: int | None = None
) -> list[Any]:
    """Grow the data to each of SCALES in turn; the page's query count must not change
    (and must be ``expect``, when given)."""
    counts, responses = [], []
    for n in SCALES:
        grow_to(n)
        number, response = queries(client, url)
        counts.append(number)
        responses.append(response)
    assert counts == [counts[0]] * len(SCALES), dict(zip(SCALES, counts, strict=True))
    if expect is not None:
        assert counts[0] == expect, counts
    return responses


def grower(add: Callable[[int], None]) -> Callable[[int], None]:
    """``add(k)`` adds k rows; the returned function tops them up to a total."""
    have = [0]

    def grow_to(total: int) -> None:
        add(total - have[0])
        have[0] = total

    return grow_to


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
            created_at=fields.pop("created_at", now),
            expires_at=now + timedelta(hours=24),
            **fields,
        )
        for user, resource in pairs
    )


def grants(reqs: list[AccessRequest], **fields: Any) -> list[Grant]:
    now = timezone.now()
    defaults: dict[str, Any] = {
        "not_before": now,
        "expires_at": now + timedelta(hours=1),
        "state": GrantState.ACTIVE,
    }
    return Grant.objects.bulk_create(
        Grant(
            request=req,
            user=req.requester,
            email=req.requester.email,
            resource=req.resource,
            created_at=now,
            **{**defaults, **fields},
        )
        for req in reqs
    )


# --- The requester's dashboard -------------------------------------------------------------


def test_dashboard_is_constant(signed_in: Any) -> None:
    client, user = signed_in("alice", groups=["oncall"])
    resources(1, break_glass_groups=["oncall"])  # a break-glass button to render
    history = resources(3)

    def add(n: int) -> None:
        # Up to 200: per item a resource I may break glass on, a live grant on it and a
        # pending request. Beyond: years of history, ended grants and decided requests.
        live = min(n, max(0, 200 - Grant.objects.filter(user=user).count()))
        mine = resources(live, break_glass_groups=["oncall"], approvals_required=2)
        approved = requests([(user, r) for r in mine], state=RequestState.APPROVED)
        grants(approved, sync_status=SyncStatus.LIVE, live_at=timezone.now())
        requests([(user, r) for r in mine])
        past = timezone.now() - timedelta(days=400)
        old = requests(
            [(user, history[i % 3]) for i in range(n - live)],
            state=RequestState.APPROVED,
            created_at=past,
        )
        grants(
            old,
            state=GrantState.EXPIRED,
            not_before=past,
            expires_at=past + timedelta(hours=1),
            sync_status=SyncStatus.REMOVED,
        )

    # The session's person, their groups, the offers counted, the break-glass offers (those
    # they hold an open grant of left out), a page of open grants, their newest requests:
    # nothing per row.
    one, two_hundred, ten_thousand = at_each_scale(client, "/", grower(add), expect=6)
    assert len(one.context["grants"]) == 1
    for response in (two_hundred, ten_thousand):
        assert len(response.context["grants"]) == 50  # a page of the 200 open grants
        assert response.context["more_grants"]
        assert len(response.context["requests"]) == 50  # the newest 50 are shown
        assert b"?grants_page=2" in response.content
    assert [r.slug for r in ten_thousand.context["break_glass"]] == ["q-0"]

    last_page = client.get("/?grants_page=4")
    assert len(last_page.context["grants"]) == 50
    assert not last_page.context["more_grants"]
    assert b"?grants_page=3" in last_page.content and b"?grants_page=5" not in last_page.content
    shown = {
        g.pk for page in (1, 2, 3, 4) for g in client.get(f"/?grants_page={page}").context["grants"]
    }
    assert shown == set(Grant.objects.open().filter(user=user).values_list("pk", flat=True))


def test_dashboard_without_break_glass_is_constant(signed_in: Any) -> None:
    # Nobody offers this person break-glass: the offers are one counting query.
    client, user = signed_in("bea", groups=["engineering"])
    resources(2, break_glass_groups=["oncall"], requester_groups=["sre"])  # not for her

    def add(n: int) -> None:
        mine = resources(n, requester_groups=["engineering"])
        approved = requests([(user, r) for r in mine], state=RequestState.APPROVED)
        grants(approved, sync_status=SyncStatus.LIVE, live_at=timezone.now())

    counts = {}
    grow_to = grower(add)
    for n in (1, 200):
        grow_to(n)
        counts[n], response = queries(client, "/")
        assert response.context["requestable"] == n
        assert response.context["break_glass"] == []
    # The session's person, their groups, the offers, a page of open grants, their requests.
    assert counts == {1: 5, 200: 5}


@pytest.mark.parametrize("page", ["0", "-3", "x", "1e9", "99999999999999999999"])
def test_dashboard_page_numbers_never_fail(signed_in: Any, page: str) -> None:
    client, _ = signed_in("alice")
    response = client.get(f"/?grants_page={page}")
    assert response.status_code == 200
    assert 1 <= response.context["grants_page"] <= 10_000


# --- Admin changelists, as an approver (the audit trail: as an auditor) --------------------


def add_requests(n: int) -> None:
    three = resources(3, approvals_required=2)
    requests([(u, three[i % 3]) for i, u in enumerate(users(n))])


def _filter(response: Any, field_path: str) -> Any:
    (spec,) = [
        f for f in response.context["cl"].filter_specs if getattr(f, "field_path", "") == field_path
    ]
    return spec


def test_access_request_changelist_is_constant(signed_in: Any) -> None:
    # The user, their claim groups, their permissions, the count and the rows: the requester
    # and resource filters ask nothing until someone types in them.
    client, _ = signed_in("bob", groups=["approvers"])
    responses = at_each_scale(
        client, "/admin/access/accessrequest/", grower(add_requests), expect=5
    )
    assert [len(r.context["cl"].result_list) for r in responses] == [1, 50, 50]
    for field_path in ("requester", "resource"):
        spec = _filter(responses[-1], field_path)
        assert spec.lookup_choices == []
        url = f"/admin/access/accessrequest/filter-choices/{field_path}/"
        assert f'data-ajax--url="{url}"' in responses[-1].content.decode()


def test_the_requester_filter_names_the_chosen_person_among_10000(signed_in: Any) -> None:
    client, _ = signed_in("bob", groups=["approvers"])
    add_requests(10_000)
    last = User.objects.filter(email__startswith="q").order_by("-email").first()
    assert last is not None
    number, response = queries(
        client, f"/admin/access/accessrequest/?requester__id__exact={last.pk}"
    )
    assert [r.requester_id for r in response.context["cl"].result_list] == [last.pk]
    assert _filter(response, "requester").lookup_choices == [(last.pk, str(last))]
    assert f'<option value="{last.pk}" selected>{last}</option>' in response.content.decode()
    # One query more than the unfiltered page: the chosen person's label.
    assert number == 6


def add_grants(n: int) -> None:
    three = resources(3)
    reqs = requests(
        [(u, three[i % 3]) for i, u in enumerate(users(n))], state=RequestState.APPROVED
    )
    grants(reqs[::2], is_break_glass=True)
    grants(reqs[1::2])


def test_grant_changelist_is_constant(signed_in: Any) -> None:
    client, _ = signed_in("bob", groups=["approvers"])
    responses = at_each_scale(client, "/admin/access/grant/", grower(add_grants))
    assert [len(r.context["cl"].result_list) for r in responses] == [1, 50, 50]


def add_synced_resources(n: int) -> None:
    now = timezone.now()
    PolicySync.objects.bulk_create(
        PolicySync(
            resource=r,
            remote_policy_id=f"pol-{r.pk}",
            last_attempt_at=now,
            last_success_at=now,
            routes=[{"name": "app", "from": "https://app.example.com"}],
        )
        for r in resources(n)
    )


def test_resource_changelist_is_constant(signed_in: Any) -> None:
    client, _ = signed_in("bob", groups=["approvers"])
    responses = at_each_scale(client, "/admin/access/resource/", grower(add_synced_resources))
    assert [len(r.context["cl"].result_list) for r in responses] == [1, 100, 100]
    assert b"current" in responses[-1].content  # the Zero sync column still renders


def test_zero_sync_changelist_is_constant(signed_in: Any) -> None:
    client, _ = signed_in("bob", groups=["approvers"])
    responses = at_each_scale(client, "/admin/zero/policysync/", grower(add_synced_resources))
    assert [len(r.context["cl"].result_list) for r in responses] == [1, 100, 100]
    assert b"https://app.example.com" in responses[-1].content


def add_audit_entries(n: int) -> None:
    start = (AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0) + 1
    now = timezone.now()
    AuditEvent.objects.bulk_create(
        AuditEvent(
            seq=seq,
            created_at=now,
            actor_label="q@example.com",
            action=AccessAction.REQUEST_SUBMITTED,
            target_type="accessrequest",
            target_id=str(seq),
            target_repr=f"#{seq}",
            resource_slug=f"q-{seq % 3}",
            details={"justification": "Investigating INC-1234 in production"},
            prev_hash=f"{seq - 1:064x}",
            hash=f"{seq:064x}",
        )
        for seq in range(start, start + n)
    )


def test_audit_changelist_is_constant(signed_in: Any) -> None:
    # Approvers do not read the trail; auditors do.
    client, _ = signed_in("carol", groups=["compliance"])
    responses = at_each_scale(client, "/admin/audit/auditevent/", grower(add_audit_entries))
    assert [len(r.context["cl"].result_list) for r in responses][1:] == [100, 100]


# What the dashboard's template computed per row before the view formatted it: the view's
# cells must be exactly these, in the person's zone.
OLD_ROW = Template(
    "{% load l10n %}"
    '{% url "request_detail" g.request_id %}|'
    '{{ g.not_before|date:"D j M H:i T" }} \N{EN DASH} {{ g.expires_at|date:"D j M H:i T" }}|'
    '{% url "request_new" %}?resource={{ g.resource.slug|urlencode }}'
)
OLD_REQUEST = Template('{% url "request_detail" r.pk %}|{{ r.created_at|date:"D j M H:i T" }}')


@pytest.mark.parametrize("zone", ["UTC", "Pacific/Chatham", "America/St_Johns"])
def test_dashboard_cells_are_what_the_template_filters_gave(signed_in: Any, zone: str) -> None:
    client, user = signed_in("alice")
    User.objects.filter(pk=user.pk).update(time_zone=zone)
    now = timezone.now()
    mine = resources(3)
    reqs = requests([(user, r) for r in mine], state=RequestState.APPROVED)
    grants(reqs[:1], sync_status=SyncStatus.LIVE, live_at=now - timedelta(minutes=7))
    grants(
        reqs[1:2],
        state=GrantState.SCHEDULED,
        not_before=now + timedelta(days=2, hours=3),
        expires_at=now + timedelta(days=2, hours=7),
        live_at=now - timedelta(seconds=30),
    )
    grants(reqs[2:], expires_at=now + timedelta(minutes=90, seconds=5))
    response = client.get("/")
    assert len(response.context["grants"]) == 3
    with tz_override(ZoneInfo(zone)):
        shown_now = response.context["now"]
        for g in response.context["grants"]:
            old = OLD_ROW.render(Context({"g": g, "now": shown_now}))
            assert "|".join([g.detail_url, g.window_text, g.more_url]) == old
            # The row (a tuple of columns) gets the answer the grant itself gets.
            model = Grant.objects.select_related("resource").get(pk=g.pk)
            assert g.access == reach.access(model, now=shown_now, zone=ZoneInfo(zone))
        for r in response.context["requests"]:
            assert f"{r.detail_url}|{r.asked_text}" == OLD_REQUEST.render(Context({"r": r}))


def test_dashboard_outcomes_name_who_rejected_and_who_revoked(signed_in: Any) -> None:
    # The two people are read per row by subqueries (``queries.email_of``), not joins.
    client, user = signed_in("alice")
    bob, carol = users(2)
    mine = resources(3)
    (rejected,) = requests([(user, mine[0])], state=RequestState.REJECTED, decided_by=bob)
    approved = requests([(user, r) for r in mine[1:]], state=RequestState.APPROVED)
    revoked_at = timezone.now() - timedelta(minutes=5)
    grants(approved[:1], state=GrantState.REVOKED, revoked_by=carol, revoked_at=revoked_at)
    grants(approved[1:], state=GrantState.REVOKED, revoked_by=user, revoked_at=revoked_at)

    outcomes = {r.pk: r.outcome for r in client.get("/").context["requests"]}

    assert outcomes[rejected.pk] == f"Rejected by {bob.email}"
    assert outcomes[approved[0].pk].startswith(
        f"Approved \N{RIGHTWARDS ARROW} revoked by {carol.email} at "
    )
    assert outcomes[approved[1].pk] == "Approved \N{RIGHTWARDS ARROW} released"


def test_the_row_checkbox_is_djangos_markup(signed_in: Any) -> None:
    from django.contrib import admin

    from apps.kit.admin_base import FastChangeListMixin

    _, user = signed_in("bob", groups=["approvers"])
    (resource,) = resources(1)
    resource.name = 'R&D <"lab">'
    (req,) = requests([(user, resource)])
    (grant,) = grants([req])
    for obj in (req, grant, resource):
        model_admin = admin.site.get_model_admin(type(obj))
        assert isinstance(model_admin, FastChangeListMixin)
        assert model_admin.action_checkbox(obj) == admin.ModelAdmin.action_checkbox(
            model_admin, obj
        )


def test_the_dashboards_time_format_is_djangos() -> None:
    from datetime import UTC, datetime

    from django.utils import dateformat

    from apps.access.rows import LocalTimes

    zone = ZoneInfo("Asia/Kolkata")
    start = datetime(2026, 1, 1, 0, 7, tzinfo=UTC)
    for step in range(400):  # every weekday and month, hours with and without a zero
        value = start + timedelta(days=step, hours=step % 24, minutes=step % 60)
        expected = dateformat.format(timezone.localtime(value, zone), "D j M H:i T")
        assert LocalTimes(zone).short(value) == expected


# --- The request page ----------------------------------------------------------------------


def test_request_page_lists_the_latest_extensions_at_constant_cost(signed_in: Any) -> None:
    from apps.access.models import GrantExtension
    from apps.access.views import DETAIL_EXTENSIONS

    client, user = signed_in("alice")
    (resource,) = resources(1)
    (req,) = requests([(user, resource)], state=RequestState.APPROVED)
    (grant,) = grants([req])
    start = timezone.now()

    def add(n: int) -> None:
        first = GrantExtension.objects.filter(grant=grant).count()
        GrantExtension.objects.bulk_create(
            GrantExtension(
                grant=grant,
                extended_by=user,
                created_at=start + timedelta(minutes=i),
                old_expires_at=start + timedelta(hours=i),
                new_expires_at=start + timedelta(hours=i + 1),
                reason=f"extension {i}",
            )
            for i in range(first, first + n)
        )

    url = f"/requests/{req.pk}"
    one, two_hundred, many = at_each_scale(client, url, grower(add))
    assert [e.reason for e in one.context["extensions"]] == ["extension 0"]
    assert not one.context["earlier_extensions"]
    assert b"earlier ones are in the audit trail" not in one.content
    for response, total in ((two_hundred, 200), (many, 10_000)):
        shown = [e.reason for e in response.context["extensions"]]
        # The newest ones, oldest first, as the page always listed them.
        assert shown == [f"extension {i}" for i in range(total - DETAIL_EXTENSIONS, total)]
        assert response.context["earlier_extensions"]
        assert b"The 20 latest extensions; earlier ones are in the audit trail." in response.content


def test_the_audit_export_link_is_for_auditors_and_costs_others_no_query(signed_in: Any) -> None:
    from django.contrib.auth.models import Permission

    auditor, _ = signed_in("carol", groups=["compliance"])
    requester, alice = signed_in("alice", groups=["engineering"])
    # A permission without the auditor role does not open the export page
    # (apps/audit/views.may_export), so it shows no link to it either.
    alice.user_permissions.add(Permission.objects.get(codename="export_auditevent"))

    assert b'href="/audit/export"' in auditor.get("/").content
    with CaptureQueriesContext(connection) as ctx:
        page = requester.get("/")
    assert b'href="/audit/export"' not in page.content
    assert not [q for q in ctx.captured_queries if "auth_permission" in q["sql"]]
