"""The simulator's evaluator on the request criteria levels and schedules use: string
matchers on method and path, source_ip, wrapping day ranges, time_of_day across DST."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from devtools.zerosim import ppl as sim_ppl
from devtools.zerosim.ppl import Request

EMAIL = "alice@example.com"


def rule(*extra: dict) -> list[dict]:
    return [
        {
            "allow": {
                "and": [
                    {"email": {"is": EMAIL}},
                    {"date": {"after": "2026-01-01T00:00:00Z", "before": "2027-01-01T00:00:00Z"}},
                    *extra,
                ]
            }
        }
    ]


def allows(policy: list[dict], when: str, **facts: str) -> bool:
    moment = datetime.fromisoformat(when).astimezone(UTC)
    return sim_ppl.evaluate(policy, Request(email=EMAIL, at=moment, **facts))


READ_ONLY = rule({"http_method": {"in": ["GET", "HEAD", "OPTIONS"]}})
API_ONLY = rule({"http_path": {"starts_with": "/api/"}})
OFFICE = rule({"source_ip": ["10.1.0.0/16", "2001:db8::/32"]})
WEEKDAYS = rule(
    {"day_of_week": "mon-fri"},
    {"time_of_day": {"timezone": "Europe/Berlin", "after": "09:00", "before": "17:00"}},
)


@pytest.mark.parametrize(
    ("policy", "facts", "allowed"),
    [
        (READ_ONLY, {"method": "GET"}, True),
        (READ_ONLY, {"method": "POST"}, False),
        (READ_ONLY, {"method": "get"}, False),  # exact, case-sensitive
        (READ_ONLY, {}, False),  # method unknown: the criterion never matches
        (API_ONLY, {"path": "/api/x"}, True),
        (API_ONLY, {"path": "/admin"}, False),
        (API_ONLY, {"path": "/apix"}, False),
        (OFFICE, {"source_ip": "10.1.2.3"}, True),
        (OFFICE, {"source_ip": "2001:db8::1"}, True),
        (OFFICE, {"source_ip": "10.2.0.1"}, False),
        (OFFICE, {"source_ip": "not-an-ip"}, False),
    ],
)
def test_request_matchers(policy, facts, allowed) -> None:
    assert allows(policy, "2026-11-24T10:00:00+01:00", **facts) is allowed


@pytest.mark.parametrize(
    ("when", "allowed"),
    [
        ("2026-11-24T10:00:00+01:00", True),  # Tuesday 10:00 Berlin (CET)
        ("2026-11-24T08:59:00+01:00", False),
        ("2026-11-24T17:00:00+01:00", False),  # before is exclusive
        ("2026-11-24T18:00:00+01:00", False),  # Tuesday 18:00
        ("2026-11-28T10:00:00+01:00", False),  # Saturday
        # The DST week: Sunday 29 March 2026 Berlin moves from CET (+1) to CEST (+2).
        ("2026-03-27T09:30:00+01:00", True),  # Friday before, 08:30 UTC
        ("2026-03-27T08:30:00+00:00", True),
        ("2026-03-31T10:00:00+02:00", True),  # Tuesday after, 08:00 UTC
        ("2026-03-31T07:30:00+00:00", True),  # 09:30 CEST
        ("2026-03-31T07:30:00+01:00", False),  # 06:30 UTC = 08:30 CEST: not yet
        ("2026-03-31T15:30:00+00:00", False),  # 17:30 CEST; would be 16:30 in CET
        ("2026-03-31T18:00:00+02:00", False),
        ("2026-03-28T10:00:00+01:00", False),  # Saturday of that week
        # October: back to CET on Sunday 25 October 2026.
        ("2026-10-27T08:30:00+00:00", True),  # Tuesday 09:30 CET
        ("2026-10-27T07:30:00+00:00", False),  # 08:30 CET
    ],
)
def test_weekday_hours_in_berlin_across_dst(when, allowed) -> None:
    assert allows(WEEKDAYS, when) is allowed


@pytest.mark.parametrize(
    ("when", "allowed"),
    [
        ("2026-11-27T12:00:00Z", True),  # Friday
        ("2026-11-28T12:00:00Z", True),  # Saturday
        ("2026-11-30T12:00:00Z", True),  # Monday
        ("2026-11-24T12:00:00Z", False),  # Tuesday
        ("2026-11-26T12:00:00Z", False),  # Thursday
    ],
)
def test_day_ranges_wrap_past_sunday(when, allowed) -> None:
    assert allows(rule({"day_of_week": "fri-mon"}), when) is allowed


def test_time_of_day_needs_a_known_zone() -> None:
    bad = rule({"time_of_day": {"timezone": "Mars/Olympus", "after": "09:00"}})
    assert any("unknown time zone" in e for e in sim_ppl.validate(bad))
    with pytest.raises(ValueError, match="unknown time zone"):
        allows(bad, "2026-11-24T10:00:00Z")


def test_would_allow_asks_the_evaluator_over_http() -> None:
    from devtools.zerosim.probe import ContractProbe, would_allow
    from devtools.zerosim.simulator import ZeroSimulator

    with ZeroSimulator() as sim:
        probe = ContractProbe(sim.url, sim.api_token, sim.organization_id)
        assert would_allow(sim.root_url, "jit-office", EMAIL) is None  # nothing applied yet
        created = probe.call(
            "POST",
            "/organizations/{org}/policies",
            json={
                "name": "jit-office",
                "description": "",
                "explanation": "",
                "remediation": "",
                "enforced": False,
                "namespaceId": sim.namespace_id,
                "ppl": rule(
                    {"http_method": {"in": ["GET"]}},
                    {"source_ip": "10.1.0.0/16"},
                    *WEEKDAYS[0]["allow"]["and"][2:],
                ),
            },
        )
        assert created.status_code == 201
        tuesday = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)  # 10:00 Berlin
        facts = {"method": "GET", "source_ip": "10.1.2.3"}
        assert would_allow(sim.root_url, "jit-office", EMAIL, at=tuesday, **facts) is True
        assert not would_allow(sim.root_url, "jit-office", EMAIL, at=tuesday, method="POST")
        assert not would_allow(
            sim.root_url, "jit-office", EMAIL, at=tuesday, method="GET", source_ip="192.0.2.1"
        )
        saturday = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
        assert not would_allow(sim.root_url, "jit-office", EMAIL, at=saturday, **facts)
        probe.close()
