"""End to end for access levels and schedules: services -> on_commit -> Redis -> a real
Celery worker -> the Zero simulator, then the simulator's evaluator asked over HTTP what it
allows at given moments, for given methods and paths.

Needs PostgreSQL and Redis (see tests/zero/test_integration.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from apps import ppl
from apps.access import schedules, services
from apps.access.models import AccessLevel, Grant, Resource
from apps.access.states import SyncStatus
from devtools.zerosim.probe import would_allow
from devtools.zerosim.simulator import ZeroSimulator
from tests.factories import AccessLevelFactory, ResourceFactory, UserFactory
from tests.support.celery_worker import CeleryWorker
from tests.zero.live import approver, eventually

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    # Requests need somebody able to approve them (a request nobody could approve is refused).
    pytest.mark.usefixtures("standby_approver"),
]

BERLIN = ZoneInfo("Europe/Berlin")
EMAIL = "alice@example.com"


def allowed(sim: ZeroSimulator, policy: str, *, at: datetime | None = None, **facts: str) -> bool:
    """The simulator's decision, asked over HTTP (``/_sim/evaluate``); False until applied."""
    return bool(would_allow(sim.root_url, policy, EMAIL, at=at, **facts))


def alice() -> Any:
    return UserFactory(username="idp|alice", email=EMAIL)


def grant_through_worker(
    sim: ZeroSimulator,
    resource: Resource,
    level: AccessLevel | None,
    minutes: int = 60,
    start_at: datetime | None = None,
) -> Grant:
    req = services.submit_request(
        requester=alice(),
        resource=resource,
        level=level,
        duration_minutes=minutes,
        justification="Checking the dashboards for INC-7",
        start_at=start_at,
    )
    grant = services.approve_request(req, approver=approver())
    assert grant is not None
    assert eventually(lambda: Grant.objects.get(pk=grant.pk).sync_status == SyncStatus.LIVE)
    return grant


def test_read_only_grant_allows_get_and_denies_post(live: ZeroSimulator, worker: CeleryWorker):
    grafana = ResourceFactory(slug="grafana")
    read = AccessLevelFactory(
        resource=grafana,
        slug="read-only",
        rank=1,
        criteria=[{"http_method": {"in": ["GET", "HEAD", "OPTIONS"]}}],
    )
    grant_through_worker(live, grafana, read)

    assert allowed(live, "jit-grafana", method="GET", path="/d/home")
    assert allowed(live, "jit-grafana", method="HEAD", path="/d/home")
    assert not allowed(live, "jit-grafana", method="POST", path="/api/dashboards/db")
    assert not allowed(live, "jit-grafana", method="DELETE", path="/d/home")


def test_path_scoped_grant_allows_api_and_denies_admin(live: ZeroSimulator, worker: CeleryWorker):
    grafana = ResourceFactory(slug="grafana")
    api = AccessLevelFactory(
        resource=grafana, slug="api", rank=1, criteria=[{"http_path": {"starts_with": "/api/"}}]
    )
    grant_through_worker(live, grafana, api)

    assert allowed(live, "jit-grafana", method="GET", path="/api/x")
    assert allowed(live, "jit-grafana", method="POST", path="/api/x")
    assert not allowed(live, "jit-grafana", method="GET", path="/admin")
    assert not allowed(live, "jit-grafana", method="GET", path="/apix")


def _next(now: datetime, weekday: int, hour: int, minute: int = 0, *, weeks: int = 1) -> datetime:
    """Berlin wall time ``hour:minute`` on ``weekday`` at least ``weeks`` weeks after ``now``."""
    day = (now.astimezone(BERLIN) + timedelta(weeks=weeks)).date()
    day += timedelta(days=(weekday - day.weekday()) % 7)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=BERLIN)


def _dst_sunday(now: datetime) -> datetime:
    """The next last Sunday of March (Berlin moves to summer time) at least a week ahead."""
    year = now.year if now < datetime(now.year, 3, 20, tzinfo=UTC) else now.year + 1
    day = max(d for d in range(25, 32) if datetime(year, 3, d).weekday() == 6)
    return datetime(year, 3, day, 12, tzinfo=BERLIN)


def test_weekday_hours_grant_across_a_dst_change(live: ZeroSimulator, worker: CeleryWorker):
    now = timezone.now()
    dst = _dst_sunday(now)
    minutes = int((dst + timedelta(days=8) - now).total_seconds() // 60)
    prod = ResourceFactory(
        slug="prod-console",
        duration_choices=[minutes],
        max_duration_minutes=minutes,
        schedule={
            "days": "mon-fri",
            "after": "09:00",
            "before": "17:00",
            "timezone": "Europe/Berlin",
        },
    )
    # "Now" is taken only inside a window: outside one, ask to start at the next opening.
    state = schedules.state_at(prod.parsed_schedule(), now, now, now + timedelta(days=8))
    start = None if state is None or state[0] else state[1]
    grant = grant_through_worker(live, prod, None, minutes, start_at=start)
    assert grant.criteria[-2:] == [
        {"day_of_week": "mon-fri"},
        {"time_of_day": {"timezone": "Europe/Berlin", "after": "09:00", "before": "17:00"}},
    ]
    name = "jit-prod-console"

    assert allowed(live, name, at=_next(now, 1, 10))  # Tuesday 10:00 Berlin
    assert not allowed(live, name, at=_next(now, 1, 18))  # Tuesday 18:00
    assert not allowed(live, name, at=_next(now, 5, 10))  # Saturday 10:00
    # The week around the change: Friday before in CET, Tuesday after in CEST.
    friday, tuesday = dst - timedelta(days=2), dst + timedelta(days=2)
    assert allowed(live, name, at=friday.replace(hour=9, minute=30))
    assert allowed(live, name, at=tuesday.replace(hour=10))
    assert allowed(live, name, at=tuesday.replace(hour=9, minute=30))
    assert not allowed(live, name, at=tuesday.replace(hour=8, minute=30))
    assert not allowed(live, name, at=tuesday.replace(hour=18))
    assert not allowed(live, name, at=(dst - timedelta(days=1)).replace(hour=10))  # Saturday
    # 16:30 CEST is inside; 17:30 CEST (16:30 CET would have been inside) is not.
    assert allowed(live, name, at=tuesday.replace(hour=16, minute=30))
    assert not allowed(live, name, at=tuesday.replace(hour=17, minute=30))


def test_upgraded_grant_keeps_one_rule_with_the_new_level_and_no_gap(
    live: ZeroSimulator, worker: CeleryWorker
):
    grafana = ResourceFactory(slug="grafana")
    read = AccessLevelFactory(
        resource=grafana,
        slug="read-only",
        rank=1,
        criteria=[{"http_method": {"in": ["GET", "HEAD", "OPTIONS"]}}],
    )
    full = AccessLevelFactory(resource=grafana, slug="full", rank=2)
    grant = grant_through_worker(live, grafana, read)
    assert not allowed(live, "jit-grafana", method="POST", path="/api/x")
    versions_before = len(live.history("jit-grafana"))

    upgrade = services.submit_request(
        requester=grant.user,
        resource=grafana,
        level=full,
        duration_minutes=60,
        justification="Need to fix the alert rules",
    )
    services.approve_request(upgrade, approver=approver())

    assert eventually(lambda: allowed(live, "jit-grafana", method="POST", path="/api/x"))
    assert eventually(lambda: Grant.objects.get(pk=grant.pk).sync_status == SyncStatus.LIVE)
    assert Grant.objects.filter(resource=grafana).count() == 1
    current = live.effective_policy("jit-grafana")
    assert current is not None
    mine = [r for r in ppl.normalize(current["ppl"]) if EMAIL in ppl.dumps(r)]
    assert len(mine) == 1 and "http_method" not in ppl.dumps(mine)
    # Every version Zero ever held carries exactly one rule for alice: the upgrade replaced
    # the read-only rule in the same write (no version with none, none with both).
    history = live.history("jit-grafana")
    assert len(history) > versions_before
    for version in history:
        rules = ppl.normalize(version["ppl"])
        assert isinstance(rules, list)
        assert len([r for r in rules if EMAIL in ppl.dumps(r)]) == 1
