"""Recurring windows: parsing, the PPL they render, and the times the pages and reminders use."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from apps import ppl
from apps.access import schedules

BERLIN = {"days": "mon-fri", "after": "09:00", "before": "17:00", "timezone": "Europe/Berlin"}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_criteria_are_day_of_week_then_time_of_day() -> None:
    schedule = schedules.parse(BERLIN)
    assert schedule is not None
    assert schedules.criteria(schedule) == [
        {"day_of_week": "mon-fri"},
        {"time_of_day": {"timezone": "Europe/Berlin", "after": "09:00", "before": "17:00"}},
    ]
    assert ppl.validate_ppl([{"allow": {"and": schedules.criteria(schedule)}}]) == []
    assert schedules.describe(schedule) == "Mon-Fri 09:00-17:00 (Europe/Berlin)"


def test_wrapping_ranges_and_lists() -> None:
    wraps = schedules.parse({**BERLIN, "days": "fri-mon"})
    listed = schedules.parse({**BERLIN, "days": "Monday, wed,FRI"})
    assert wraps is not None and wraps.weekdays == frozenset({4, 5, 6, 0})
    assert listed is not None and listed.weekdays == frozenset({0, 2, 4})
    assert listed.days == "monday,wed,fri"
    assert schedules.parse(None) is None and schedules.parse({}) is None


def test_state_at_open_closed_and_over() -> None:
    schedule = schedules.parse(BERLIN)
    assert schedule is not None
    start, end = at("2026-11-23T00:00:00+00:00"), at("2026-12-07T00:00:00+00:00")
    # Tuesday 10:00 Berlin (CET, UTC+1): open, closes 17:00 Berlin = 16:00 UTC.
    assert schedules.state_at(schedule, at("2026-11-24T10:00:00+01:00"), start, end) == (
        True,
        at("2026-11-24T17:00:00+01:00"),
    )
    # Friday 18:00: next opens Monday 09:00.
    assert schedules.state_at(schedule, at("2026-11-27T18:00:00+01:00"), start, end) == (
        False,
        at("2026-11-30T09:00:00+01:00"),
    )
    assert schedules.state_at(schedule, at("2026-12-05T12:00:00+01:00"), start, end) is None


def test_windows_follow_the_dst_change() -> None:
    schedule = schedules.parse(BERLIN)
    assert schedule is not None
    # The week of 2026-03-29 (Berlin moves to CEST on Sunday 29 March).
    found = list(
        schedules.windows(
            schedule, at("2026-03-26T00:00:00+00:00"), at("2026-04-01T00:00:00+00:00")
        )
    )
    assert [w[0].isoformat() for w in found] == [
        "2026-03-26T08:00:00+00:00",  # Thu, CET
        "2026-03-27T08:00:00+00:00",  # Fri, CET
        "2026-03-30T07:00:00+00:00",  # Mon, CEST
        "2026-03-31T07:00:00+00:00",  # Tue, CEST
    ]


def test_last_window_end_is_the_last_close_inside_the_grant() -> None:
    schedule = schedules.parse(BERLIN)
    assert schedule is not None
    # Two weeks from Monday 23 Nov, ending Sunday 6 Dec: the last window closes Fri 4 Dec.
    end = schedules.last_window_end(
        schedule, at("2026-11-23T00:00:00+00:00"), at("2026-12-06T23:00:00+00:00")
    )
    assert end == at("2026-12-04T17:00:00+01:00")
    # A grant that ends inside a window ends there.
    assert schedules.last_window_end(
        schedule, at("2026-11-24T08:00:00+00:00"), at("2026-11-24T12:00:00+00:00")
    ) == at("2026-11-24T12:00:00+00:00")
    # A weekend-only grant never opens.
    assert (
        schedules.last_window_end(
            schedule, at("2026-11-28T00:00:00+00:00"), at("2026-11-29T23:00:00+00:00")
        )
        is None
    )


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/api/x", True),
        ("POST", "/api/x", False),
        ("GET", "/admin", False),
        (None, "/api/x", False),
    ],
)
def test_matches_request_checks_method_and_path_only(method, path, allowed) -> None:
    criteria = [
        {"http_method": {"in": ["GET", "HEAD"]}},
        {"http_path": {"starts_with": "/api/"}},
        {"source_ip": "10.0.0.0/8"},  # not known here: ignored
    ]
    assert ppl.matches_request(criteria, method=method, path=path) is allowed


def test_render_orders_grants_with_criteria_deterministically() -> None:
    t0, t1 = at("2026-11-24T09:00:00+00:00"), at("2026-11-24T10:00:00+00:00")
    a = ppl.GrantRule("a@example.com", t0, t1, ({"http_method": "GET"},))
    b = ppl.GrantRule("a@example.com", t0, t1)
    assert ppl.render_policy([], [a, b]) == ppl.render_policy([], [b, a])
    rendered = ppl.render_policy([], [a])[0]["allow"]["and"]
    assert [next(iter(c)) for c in rendered] == ["email", "date", "http_method"]
