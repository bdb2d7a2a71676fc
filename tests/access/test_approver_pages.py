"""The approver's pages: the brief on the approve, reject and review pages, the approve form's
choices, the requests list's columns and detail lines, and the counts on the admin index.

Pages are read through the real admin as a signed-in approver; the counts and briefs are
checked against what the database holds, and their queries are counted at 1 and at many.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.access.models import Approval, Grant
from apps.access.states import GrantState, RequestKind, SyncStatus
from apps.accounts.timezones import abbreviation
from tests.access.test_admin_requests import CHANGELIST, confirm, select
from tests.factories import (
    AccessLevelFactory,
    AccessRequestFactory,
    GrantFactory,
    ResourceFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

READ_CRITERIA = [
    {"http_method": {"in": ["GET", "HEAD", "OPTIONS"]}},
    {"http_path": {"starts_with": "/api/"}},
]


@pytest.fixture
def grafana() -> Any:
    resource = ResourceFactory(
        slug="grafana",
        name="Grafana",
        approvals_required=2,
        duration_choices=[60, 240, 480],
        auto_approve_rules=[{"group": "sre", "max_minutes": 60}],
    )
    AccessLevelFactory(
        resource=resource,
        slug="read-only",
        name="Read-only",
        rank=0,
        criteria=READ_CRITERIA,
        auto_approve_rules=[{"group": "oncall", "max_minutes": 240}],
    )
    AccessLevelFactory(resource=resource, slug="full", name="Full", rank=1, auto_approve_rules=[])
    return resource


@pytest.fixture
def people(signed_in: Any) -> dict[str, Any]:
    return {
        "alice": signed_in("alice", groups=["engineering", "oncall"]),
        "bob": signed_in("bob", groups=["approvers"]),
        "erin": signed_in("erin", groups=["approvers"]),
        "carol": signed_in("carol", groups=["compliance"]),
    }


def level(resource: Any, slug: str) -> Any:
    return resource.levels.get(slug=slug)


def past_grants(user: Any, resource: Any, bob: Any, n: int = 6) -> list[Grant]:
    """``n`` ended grants of ``user`` on ``resource``, a day apart, newest last: the newest
    revoked by ``bob``, the one before it break-glass and not reviewed."""
    now = timezone.now()
    made = []
    for i in range(n):
        start = now - timedelta(days=n - i)
        newest, second = i == n - 1, i == n - 2
        made.append(
            GrantFactory(
                request__requester=user,
                request__resource=resource,
                request__kind=RequestKind.BREAK_GLASS if second else RequestKind.NEW,
                not_before=start,
                expires_at=start + timedelta(hours=1),
                state=GrantState.REVOKED if newest else GrantState.EXPIRED,
                revoked_by=bob if newest else None,
                revoked_at=start + timedelta(minutes=10) if newest else None,
                revoke_reason="left the incident" if newest else "",
                is_break_glass=second,
                level=level(resource, "full"),
            )
        )
    return made


# --- The approve page's brief ----------------------------------------------------------


def test_the_approve_page_tells_the_approver_what_they_decide(
    people: dict[str, Any], grafana: Any
) -> None:
    bob, bob_user = people["bob"]
    erin, _ = people["erin"]
    _, alice = people["alice"]
    history = past_grants(alice, grafana, bob_user)
    req = AccessRequestFactory(
        requester=alice,
        resource=grafana,
        level=level(grafana, "full"),
        duration_minutes=240,
        justification="Rotate the dashboards for INC-7",
        ticket="INC-7",
    )
    confirm(erin, "approve_selected", [req.pk], note="fine by me")

    page = select(bob, "approve_selected", [req.pk])

    assert page.status_code == 200
    (brief,) = page.context["briefs"]
    assert brief.requester == "alice <alice@example.com>"
    assert brief.resource_name == "Grafana"
    assert brief.level_name == "Full"
    assert brief.level_meaning == [
        "Everything the resource offers: no limit on methods, paths or addresses."
    ]
    assert (brief.justification, brief.ticket) == ("Rotate the dashboards for INC-7", "INC-7")
    assert (brief.counted, brief.needed) == (1, 2)
    assert [(a.approver, a.note, a.not_counted) for a in brief.approvals] == [
        ("erin <erin@example.com>", "fine by me", "")
    ]
    # The last five of six grants, newest first, with what happened to them.
    assert brief.history_total == 6
    assert [p.grant.pk for p in brief.history] == [g.pk for g in reversed(history)][:5]
    assert brief.history[0].outcome == "revoked by bob <bob@example.com>: left the incident"
    assert brief.history[1].break_glass == "break-glass, not reviewed"
    assert brief.history[2].outcome == "expired"
    # Full is never auto-approved, but at Read-only alice's on-call rule would have been.
    assert brief.auto_approval == [
        "No auto-approval rule at the level Full.",
        "At the lower level Read-only, the rule oncall, up to 4 hours would have approved "
        "it automatically (level asked: Full).",
    ]
    html = page.content.decode()
    for text in [
        "Level asked",
        "<strong>Full</strong>",
        "Rotate the dashboards for INC-7",
        "1 of 2 approvals so far",
        "erin &lt;erin@example.com&gt;, ",
        "left the incident",
        "The latest 5 of 6 grants.",
        'Window <span class="quiet">(UTC)</span>',
    ]:
        assert text in html, text


def test_the_brief_says_what_a_lower_level_allows_and_which_rule_almost_matched(
    people: dict[str, Any], grafana: Any
) -> None:
    bob, _ = people["bob"]
    _, alice = people["alice"]
    req = AccessRequestFactory(
        requester=alice, resource=grafana, level=level(grafana, "read-only"), duration_minutes=480
    )

    page = select(bob, "approve_selected", [req.pk])

    (brief,) = page.context["briefs"]
    assert brief.level_meaning == [
        "only the HTTP methods GET, HEAD or OPTIONS (reading only: no changes)",
        "only paths starting with /api/",
    ]
    assert brief.auto_approval == [
        "Almost: the rule oncall, up to 4 hours did not match: 8 hours asked, the rule covers "
        "up to 4 hours."
    ]
    assert brief.history == [] and brief.history_total == 0
    html = page.content.decode()
    assert "only paths starting with /api/" in html
    assert "No grants on this resource before." in html


def test_a_rule_that_misses_on_two_counts_says_both(people: dict[str, Any]) -> None:
    bob, _ = people["bob"]
    dave = UserFactory(username="idp|dave", email="dave@example.com", groups=["engineering"])
    plain = ResourceFactory(slug="wiki", auto_approve_rules=[{"group": "sre", "max_minutes": 60}])
    req = AccessRequestFactory(requester=dave, resource=plain, duration_minutes=240)

    (brief,) = select(bob, "approve_selected", [req.pk]).context["briefs"]

    assert brief.level_name == "" and brief.auto_approval == [
        "The rule sre, up to 1 hour did not match: the requester is not in the group sre; "
        "4 hours asked, the rule covers up to 1 hour."
    ]


def test_the_briefs_cost_the_same_queries_for_one_request_and_for_many(
    people: dict[str, Any], grafana: Any
) -> None:
    bob, bob_user = people["bob"]

    def page_queries(ids: list[int]) -> int:
        with CaptureQueriesContext(connection) as ctx:
            page = select(bob, "approve_selected", ids)
        assert len(page.context["briefs"]) == len(ids)
        return len(ctx.captured_queries)

    def asking(n: int) -> list[int]:
        ids = []
        for _ in range(n):
            person = UserFactory(groups=["engineering"])
            past_grants(person, grafana, bob_user, n=2)
            req = AccessRequestFactory(
                requester=person, resource=grafana, level=level(grafana, "full")
            )
            Approval.objects.create(request=req, approver=erin_user, created_at=timezone.now())
            ids.append(req.pk)
        return ids

    erin_user = people["erin"][1]
    one = page_queries(asking(1))
    many = page_queries(asking(25))
    assert one == many


def test_the_reject_page_shows_the_same_brief(people: dict[str, Any], grafana: Any) -> None:
    bob, _ = people["bob"]
    _, alice = people["alice"]
    req = AccessRequestFactory(requester=alice, resource=grafana, level=level(grafana, "full"))

    page = select(bob, "reject_selected", [req.pk])

    assert [b.pk for b in page.context["briefs"]] == [req.pk]
    assert 'class="brief-justification prewrap">Investigating incident INC-1234' in (
        page.content.decode()
    )


def test_the_break_glass_review_page_shows_the_justification_and_history(
    people: dict[str, Any], grafana: Any
) -> None:
    bob, bob_user = people["bob"]
    _, alice = people["alice"]
    past_grants(alice, grafana, bob_user, n=2)
    grant = GrantFactory(
        request__requester=alice,
        request__resource=grafana,
        request__kind=RequestKind.BREAK_GLASS,
        request__justification="Prod is down, INC-9: restarting the exporter",
        is_break_glass=True,
        level=level(grafana, "full"),
    )

    page = bob.post(
        "/admin/access/grant/",
        {"action": "mark_reviewed_selected", "_selected_action": [grant.pk], "index": "0"},
    )

    assert page.status_code == 200
    (brief,) = page.context["briefs"]
    assert brief.justification == "Prod is down, INC-9: restarting the exporter"
    assert brief.level_name == "Full" and brief.grant == grant
    assert brief.history_total == 2  # the grant under review is not its own history
    html = page.content.decode()
    assert "Prod is down, INC-9: restarting the exporter" in html
    assert "Level held" in html
    assert "besides this one" in html


# --- The approve form's choices ------------------------------------------------------------


def test_lowering_offers_the_lower_levels_only(people: dict[str, Any], grafana: Any) -> None:
    bob, _ = people["bob"]
    _, alice = people["alice"]
    req = AccessRequestFactory(requester=alice, resource=grafana, level=level(grafana, "full"))

    form = select(bob, "approve_selected", [req.pk]).context["form"]

    assert [value for value, _ in form.fields["level"].choices] == ["", "read-only"]
    labels = dict(form.fields["level"].choices)
    assert labels["read-only"].startswith("Read-only: only the HTTP methods GET, HEAD or OPTIONS")
    assert '<select name="level"' in select(bob, "approve_selected", [req.pk]).content.decode()

    raised = confirm(bob, "approve_selected", [req.pk], level="full")
    assert raised.status_code == 200  # the page again, with the error; nothing approved
    assert "Choose one of the lower levels offered." in raised.content.decode()
    assert not Grant.objects.exists()

    confirm(bob, "approve_selected", [req.pk], level="read-only")
    req.refresh_from_db()
    assert req.approved_level == level(grafana, "read-only")


def test_a_batch_across_resources_offers_no_level(people: dict[str, Any], grafana: Any) -> None:
    bob, _ = people["bob"]
    _, alice = people["alice"]
    carol_user = people["carol"][1]
    one = AccessRequestFactory(requester=alice, resource=grafana, level=level(grafana, "full"))
    other = AccessRequestFactory(requester=carol_user, resource=ResourceFactory(slug="vault"))

    form = select(bob, "approve_selected", [one.pk, other.pk]).context["form"]

    assert "level" not in form.fields


def test_shortening_offers_durations_below_the_longest_asked(
    people: dict[str, Any], grafana: Any
) -> None:
    bob, _ = people["bob"]
    _, alice = people["alice"]
    req = AccessRequestFactory(
        requester=alice, resource=grafana, level=level(grafana, "full"), duration_minutes=480
    )

    form = select(bob, "approve_selected", [req.pk]).context["form"]
    assert [value for value, _ in form.fields["duration_choice"].choices] == [
        "",
        15,
        30,
        60,
        120,
        240,
    ]
    assert dict(form.fields["duration_choice"].choices)[240] == "4 hours"

    too_long = confirm(bob, "approve_selected", [req.pk], duration_minutes="480")
    both = confirm(bob, "approve_selected", [req.pk], duration_choice="60", duration_minutes="90")
    assert "That shortens nothing: the longest request asks for 480 minutes" in (
        too_long.content.decode()
    )
    assert "Choose a duration or type one, not both." in both.content.decode()
    assert Approval.objects.count() == 0

    confirm(bob, "approve_selected", [req.pk], duration_choice="120")
    req.refresh_from_db()
    assert req.approved_duration_minutes == 120


# --- The requests list ---------------------------------------------------------------------


def test_the_requests_list_shows_the_columns_an_approver_needs(
    people: dict[str, Any], grafana: Any
) -> None:
    bob, _ = people["bob"]
    _, alice = people["alice"]
    pending = AccessRequestFactory(
        requester=alice,
        resource=grafana,
        level=level(grafana, "full"),
        duration_minutes=240,
        ticket="INC-7",
        justification="Rotate\nthe dashboards",
    )
    approved = GrantFactory(
        request__requester=people["carol"][1],
        request__resource=grafana,
        request__level=level(grafana, "full"),
        request__approved_level=level(grafana, "read-only"),
        level=level(grafana, "read-only"),
    ).request

    page = bob.get(CHANGELIST)

    cl = page.context["cl"]
    assert list(cl.list_display) == [
        "action_checkbox",
        "id",
        "state_badge",
        "requester",
        "resource",
        "level_shown",
        "window",
        "approvals",
    ]
    html = page.content.decode()
    assert '<td class="field-level_shown">Full</td>' in html
    assert '<td class="field-window">on approval, 4 hours</td>' in html
    assert '<td class="field-approvals">0 of 2</td>' in html
    assert '<td class="field-level_shown">Read-only (asked Full)</td>' in html
    grant = approved.grant
    start = timezone.localtime(grant.not_before)
    # In the reader's zone, naming it (one clock).
    assert f"{start:%a} {start.day} {start:%b %H:%M} {abbreviation(start)} \N{EN DASH} " in html
    # One detail line under each row: kind, age, ticket, the justification on one line.
    assert html.count('<tr class="detail-row">') == 2
    assert "asked 0\xa0minutes ago · ticket INC-7 · “Rotate the dashboards”" in html
    assert pending.pk in [r.pk for r in cl.result_list]


def test_waiting_for_me_lists_what_the_approver_can_still_decide(
    people: dict[str, Any], grafana: Any
) -> None:
    bob, bob_user = people["bob"]
    _, alice = people["alice"]
    carol = people["carol"][1]
    mine = AccessRequestFactory(requester=alice, resource=grafana)
    approved_by_me = AccessRequestFactory(requester=carol, resource=grafana)
    Approval.objects.create(request=approved_by_me, approver=bob_user, created_at=timezone.now())
    AccessRequestFactory(requester=bob_user, resource=ResourceFactory(slug="own"))
    AccessRequestFactory(requester=alice, resource=ResourceFactory(slug="hr", approver_groups=[]))
    AccessRequestFactory(
        requester=UserFactory(), resource=grafana, expires_at=timezone.now() - timedelta(1)
    )

    page = bob.get(CHANGELIST + "?waiting=me")

    assert [r.pk for r in page.context["cl"].result_list] == [mine.pk]


# --- The admin index -----------------------------------------------------------------------


def counts(page: Any) -> dict[str, str]:
    import re

    return dict(
        re.findall(
            r'<li data-count="([a-z-]+)"><a href="[^"]*"><span class="count[^"]*">(\d+)</span>',
            page.content.decode(),
        )
    )


def test_the_index_counts_what_waits_for_this_approver(
    people: dict[str, Any], grafana: Any
) -> None:
    bob, bob_user = people["bob"]
    _, alice = people["alice"]
    now = timezone.now()
    hr = ResourceFactory(slug="hr", approver_groups=["hr-approvers"])
    AccessRequestFactory(requester=alice, resource=grafana)
    AccessRequestFactory(requester=alice, resource=hr)  # not bob's to decide
    GrantFactory(request__requester=alice, request__resource=grafana, is_break_glass=True)
    GrantFactory(request__requester=bob_user, request__resource=grafana, is_break_glass=True)
    GrantFactory(request__resource=hr, is_break_glass=True)
    GrantFactory(
        request__resource=grafana,
        state=GrantState.REVOKED,
        revoked_at=now - timedelta(minutes=10),
        sync_status=SyncStatus.LIVE,
    )
    GrantFactory(
        request__resource=hr,
        state=GrantState.REVOKED,
        revoked_at=now - timedelta(minutes=10),
        sync_status=SyncStatus.LIVE,
    )

    assert counts(bob.get("/admin/")) == {"waiting": "1", "review": "1", "not-enforced": "1"}
    # An auditor decides nothing but sees every unenforced revocation.
    assert counts(people["carol"][0].get("/admin/")) == {"not-enforced": "2"}
    index = bob.get("/admin/").content.decode()
    assert 'href="/admin/access/accessrequest/?waiting=me"' in index
    assert 'href="/admin/access/grant/?needs_review=yes"' in index
    assert 'href="/admin/access/grant/?removal=overdue"' in index


def test_the_index_counts_cost_the_same_queries_at_any_size(
    people: dict[str, Any], grafana: Any
) -> None:
    bob, _ = people["bob"]

    def index_queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert bob.get("/admin/").status_code == 200
        return len(ctx.captured_queries)

    def add(n: int) -> None:
        for _ in range(n):
            person = UserFactory()
            AccessRequestFactory(requester=person, resource=grafana)
            GrantFactory(request__resource=grafana, is_break_glass=True)

    add(1)
    one = index_queries()
    add(30)
    assert index_queries() == one
    assert counts(bob.get("/admin/"))["waiting"] == "31"
