"""The worker's windows on a target that cannot open or close a rule by itself (Core: no
``date``, no ``day_of_week``/``time_of_day``): which grants' rules belong in the policy now,
when that next changes (DST included), and the rules rendered for such a target."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from apps import ppl
from apps.access import targets
from apps.access.states import GrantState
from apps.pomerium import desired, windows
from tests.factories import GrantFactory, ResourceFactory

CORE: frozenset[str] = frozenset()
ZERO = frozenset({targets.DATE, targets.RECURRING, targets.CHANGESETS, targets.ACTIVITY_LOG})
DATE_ONLY = frozenset({targets.DATE})
BERLIN_WEEKDAYS = {
    "days": "mon-fri",
    "after": "09:00",
    "before": "17:00",
    "timezone": "Europe/Berlin",
}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def grant(start: str, end: str, schedule: dict[str, str] | None = None) -> Any:
    return SimpleNamespace(not_before=at(start), expires_at=at(end), schedule=schedule)


@pytest.fixture
def core(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every target is a Core: no capabilities at all."""
    monkeypatch.setattr(targets, "capabilities", lambda name: CORE)


# --- grant_window: is the rule in the policy now? -------------------------------------------


def test_a_plain_window_is_open_from_its_start_to_just_before_its_end() -> None:
    g = grant("2026-03-02T10:00:00+00:00", "2026-03-02T11:00:00+00:00")
    assert windows.grant_window(g, at("2026-03-02T09:59:59+00:00"), CORE) is None
    opened = windows.grant_window(g, at("2026-03-02T10:00:00+00:00"), CORE)
    assert opened == windows.Window(g.not_before, g.expires_at)
    assert windows.grant_window(g, at("2026-03-02T10:59:59+00:00"), CORE) == opened
    assert windows.grant_window(g, at("2026-03-02T11:00:00+00:00"), CORE) is None


def test_a_target_with_date_carries_a_scheduled_grant_before_it_starts() -> None:
    g = grant("2026-03-02T10:00:00+00:00", "2026-03-02T11:00:00+00:00")
    early = at("2026-03-02T08:00:00+00:00")
    assert windows.grant_window(g, early, ZERO) == windows.Window(g.not_before, g.expires_at)
    assert windows.grant_window(g, early, DATE_ONLY) is not None
    assert windows.grant_window(g, at("2026-03-02T11:00:00+00:00"), ZERO) is None


def test_a_recurring_window_on_core_is_the_current_day_window_in_its_zone() -> None:
    # Mon 2 Mar 2026 - Fri 6 Mar; Berlin is UTC+1 in March before the 29th.
    g = grant("2026-03-02T00:00:00+00:00", "2026-03-07T00:00:00+00:00", BERLIN_WEEKDAYS)
    assert windows.grant_window(g, at("2026-03-03T07:59:59+00:00"), CORE) is None
    window = windows.grant_window(g, at("2026-03-03T08:00:00+00:00"), CORE)
    assert window == windows.Window(
        at("2026-03-03T08:00:00+00:00"), at("2026-03-03T16:00:00+00:00")
    )
    assert windows.grant_window(g, at("2026-03-03T16:00:00+00:00"), CORE) is None
    # A target with RECURRING evaluates the schedule itself: the grant's own window.
    assert windows.grant_window(g, at("2026-03-03T20:00:00+00:00"), ZERO) == windows.Window(
        g.not_before, g.expires_at
    )
    # A target with DATE only: the worker adds and removes the rule; the rule keeps its date.
    assert windows.grant_window(g, at("2026-03-03T20:00:00+00:00"), DATE_ONLY) is None
    assert windows.grant_window(g, at("2026-03-03T09:00:00+00:00"), DATE_ONLY) == windows.Window(
        g.not_before, g.expires_at
    )


def test_a_recurring_window_is_cut_by_the_grants_own_end() -> None:
    g = grant("2026-03-02T00:00:00+00:00", "2026-03-03T12:00:00+00:00", BERLIN_WEEKDAYS)
    window = windows.grant_window(g, at("2026-03-03T11:00:00+00:00"), CORE)
    assert window == windows.Window(
        at("2026-03-03T08:00:00+00:00"), at("2026-03-03T12:00:00+00:00")
    )


# --- next_boundary ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_next_boundary_is_the_nearest_start_or_end_of_any_grant(core: None) -> None:
    resource = ResourceFactory()
    now = at("2026-03-02T10:00:00+00:00")
    GrantFactory(
        resource=resource,
        not_before=now - timedelta(minutes=5),
        expires_at=now + timedelta(minutes=30),
    )
    GrantFactory(
        resource=resource,
        state=GrantState.SCHEDULED,
        not_before=now + timedelta(minutes=10),
        expires_at=now + timedelta(hours=2),
    )
    assert windows.next_boundary(resource, now) == now + timedelta(minutes=10)
    assert windows.next_boundary(resource, now + timedelta(minutes=10)) == now + timedelta(
        minutes=30
    )
    assert windows.next_boundary(resource, now + timedelta(minutes=30)) == now + timedelta(hours=2)
    assert windows.next_boundary(resource, now + timedelta(hours=2)) is None
    assert set(windows.open_windows(resource, now)) == {
        g.pk for g in resource.grants.filter(not_before__lte=now)
    }


@pytest.mark.django_db
def test_revoked_and_expired_grants_have_no_window_and_no_boundary(core: None) -> None:
    resource = ResourceFactory()
    now = at("2026-03-02T10:00:00+00:00")
    for state in (GrantState.REVOKED, GrantState.EXPIRED):
        GrantFactory(
            resource=resource,
            state=state,
            not_before=now - timedelta(minutes=5),
            expires_at=now + timedelta(minutes=30),
            revoked_at=now - timedelta(minutes=1) if state == GrantState.REVOKED else None,
        )
    assert windows.open_windows(resource, now) == {}
    assert windows.next_boundary(resource, now) is None
    assert desired.wanted_grants(resource, now) == {}


@pytest.mark.django_db
def test_a_target_that_closes_windows_by_itself_has_no_boundary(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(targets, "capabilities", lambda name: ZERO)
    resource = ResourceFactory()
    now = at("2026-03-02T10:00:00+00:00")
    GrantFactory(resource=resource, not_before=now, expires_at=now + timedelta(minutes=30))
    assert windows.next_boundary(resource, now) is None


@pytest.mark.django_db
def test_recurring_boundaries_follow_berlin_across_the_spring_dst_change(core: None) -> None:
    """Europe/Berlin moves from UTC+1 to UTC+2 on Sunday 29 March 2026 at 01:00 UTC: the
    09:00 opening is 08:00 UTC on Friday the 27th and 07:00 UTC on Monday the 30th."""
    resource = ResourceFactory()
    GrantFactory(
        resource=resource,
        not_before=at("2026-03-26T00:00:00+00:00"),
        expires_at=at("2026-04-03T00:00:00+00:00"),
        schedule=BERLIN_WEEKDAYS,
        criteria=[{"http_method": {"is": "GET"}}, *ppl_schedule(BERLIN_WEEKDAYS)],
    )
    moments = []
    now = at("2026-03-27T06:00:00+00:00")
    while (nxt := windows.next_boundary(resource, now)) is not None and len(moments) < 4:
        moments.append(nxt)
        now = nxt
    assert moments == [
        at("2026-03-27T08:00:00+00:00"),  # Fri 09:00 CET opens
        at("2026-03-27T16:00:00+00:00"),  # Fri 17:00 CET closes
        at("2026-03-30T07:00:00+00:00"),  # Mon 09:00 CEST opens (an hour earlier in UTC)
        at("2026-03-30T15:00:00+00:00"),  # Mon 17:00 CEST closes
    ]
    # Over the weekend nothing is open; on Monday at 09:30 CEST it is.
    assert windows.open_windows(resource, at("2026-03-29T12:00:00+00:00")) == {}
    monday = windows.open_windows(resource, at("2026-03-30T07:30:00+00:00"))
    assert list(monday.values()) == [
        windows.Window(at("2026-03-30T07:00:00+00:00"), at("2026-03-30T15:00:00+00:00"))
    ]


@pytest.mark.django_db
def test_recurring_boundaries_follow_berlin_across_the_autumn_dst_change(core: None) -> None:
    """Back to UTC+1 on Sunday 25 October 2026: Friday closes 15:00 UTC, Monday 16:00 UTC."""
    resource = ResourceFactory()
    GrantFactory(
        resource=resource,
        not_before=at("2026-10-22T00:00:00+00:00"),
        expires_at=at("2026-10-30T00:00:00+00:00"),
        schedule=BERLIN_WEEKDAYS,
    )
    assert windows.next_boundary(resource, at("2026-10-23T10:00:00+00:00")) == at(
        "2026-10-23T15:00:00+00:00"
    )
    assert windows.next_boundary(resource, at("2026-10-23T15:00:00+00:00")) == at(
        "2026-10-26T08:00:00+00:00"
    )
    assert windows.next_boundary(resource, at("2026-10-26T08:00:00+00:00")) == at(
        "2026-10-26T16:00:00+00:00"
    )


def ppl_schedule(schedule: dict[str, str]) -> list[dict[str, Any]]:
    from apps.access import schedules

    parsed = schedules.parse(schedule)
    assert parsed is not None
    return schedules.criteria(parsed)


# --- desired: what a Core policy holds -------------------------------------------------------


@pytest.mark.django_db
def test_core_rules_carry_the_exact_email_and_the_levels_criteria_only(core: None) -> None:
    resource = ResourceFactory()
    now = at("2026-03-03T08:30:00+00:00")
    level = [{"http_method": {"is": "GET"}}]
    open_now = GrantFactory(
        resource=resource,
        email="First.Last@Corp.com",
        not_before=at("2026-03-02T00:00:00+00:00"),
        expires_at=at("2026-03-07T00:00:00+00:00"),
        schedule=BERLIN_WEEKDAYS,
        criteria=[*level, *ppl_schedule(BERLIN_WEEKDAYS)],
    )
    GrantFactory(  # starts later: no rule yet
        resource=resource,
        state=GrantState.SCHEDULED,
        not_before=now + timedelta(hours=1),
        expires_at=now + timedelta(hours=2),
    )
    wanted = desired.wanted_grants(resource, now)
    assert list(wanted) == [open_now.pk]
    policy = desired.render(resource, wanted)
    assert policy == [{"allow": {"and": [{"email": {"is": "First.Last@Corp.com"}}, *level]}}]
    text = ppl.dumps(policy)
    for missing in ("date", "day_of_week", "time_of_day"):
        assert missing not in text
    assert ppl.validate_ppl(policy, criteria=ppl.CRITERIA_CORE) == []
    assert desired.refused_rules(wanted, desired.criteria_registry(resource)) == {}
    assert desired.rule_text(wanted[open_now.pk], dated=False) == ppl.dumps(policy[0])


@pytest.mark.django_db
def test_the_digest_changes_at_each_boundary_so_the_sync_writes(core: None) -> None:
    resource = ResourceFactory()
    start = at("2026-03-02T10:00:00+00:00")
    GrantFactory(resource=resource, not_before=start, expires_at=start + timedelta(minutes=1))

    def digest(moment: datetime) -> str:
        props = desired.properties(resource, desired.desired_policy(resource, moment))
        return desired.state_digest(desired.managed_state(props))

    before, during, after = (
        digest(start - timedelta(seconds=1)),
        digest(start),
        digest(start + timedelta(minutes=1)),
    )
    assert before != during
    assert during != after
    assert before == after  # no grant rule: only the deny-all rule
    assert desired.desired_policy(resource, start + timedelta(minutes=1)) == [ppl.DENY_ALL_RULE]


@pytest.mark.django_db
def test_each_recurring_window_has_its_own_key(core: None) -> None:
    resource = ResourceFactory()
    g = GrantFactory(
        resource=resource,
        not_before=at("2026-03-02T00:00:00+00:00"),
        expires_at=at("2026-03-07T00:00:00+00:00"),
        schedule=BERLIN_WEEKDAYS,
        criteria=ppl_schedule(BERLIN_WEEKDAYS),
    )
    tuesday = desired.wanted_grants(resource, at("2026-03-03T09:00:00+00:00"))[g.pk]
    wednesday = desired.wanted_grants(resource, at("2026-03-04T09:00:00+00:00"))[g.pk]
    assert tuesday != wednesday
    assert tuesday[1:3] == ("2026-03-03T08:00:00Z", "2026-03-03T16:00:00Z")


@pytest.mark.django_db
def test_zero_rendering_is_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(targets, "capabilities", lambda name: ZERO)
    resource = ResourceFactory()
    now = at("2026-03-03T20:00:00+00:00")
    g = GrantFactory(
        resource=resource,
        email="alice@example.com",
        not_before=at("2026-03-02T00:00:00+00:00"),
        expires_at=at("2026-03-07T00:00:00+00:00"),
        schedule=BERLIN_WEEKDAYS,
        criteria=ppl_schedule(BERLIN_WEEKDAYS),
    )
    wanted = desired.wanted_grants(resource, now)
    assert wanted == {g.pk: desired.rule_key(g.email, g.not_before, g.expires_at, g.criteria)}
    rule = desired.render(resource, wanted)[0]["allow"]["and"]
    assert rule[1] == {"date": {"after": "2026-03-02T00:00:00Z", "before": "2026-03-07T00:00:00Z"}}
    assert rule[2:] == ppl_schedule(BERLIN_WEEKDAYS)
