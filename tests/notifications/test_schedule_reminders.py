"""A grant with a recurring window is reminded about once, before its LAST window closes,
not before each daily close."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core import mail

from apps.access.models import Grant, Resource
from apps.notifications import services as outbox
from tests.factories import GrantFactory

pytestmark = pytest.mark.django_db

BERLIN = {"days": "mon-fri", "after": "09:00", "before": "17:00", "timezone": "Europe/Berlin"}
START = datetime(2026, 11, 2, 7, 0, tzinfo=UTC)  # Monday 08:00 Berlin
END = datetime(2026, 11, 15, 22, 0, tzinfo=UTC)  # Sunday night: the last window is Fri 13th


@pytest.fixture
def scan(after_commit: Any) -> Any:
    def run(now: datetime) -> dict[str, int]:
        with after_commit():
            return outbox.scan_reminders(now)

    return run


@pytest.fixture
def grant(people: dict[str, Any], resource: Resource) -> Grant:
    return GrantFactory(
        request__requester=people["alice"],
        request__resource=resource,
        not_before=START,
        expires_at=END,
        schedule=BERLIN,
    )


def test_reminded_before_the_last_window_closes_only(grant: Grant, scan: Any) -> None:
    daily_close = datetime(2026, 11, 3, 15, 50, tzinfo=UTC)  # Tue 16:50 Berlin
    assert scan(daily_close)["expiry_reminders"] == 0
    last_close = datetime(2026, 11, 13, 16, 0, tzinfo=UTC)  # Fri 13 Nov 17:00 Berlin
    assert scan(last_close - timedelta(minutes=20))["expiry_reminders"] == 0
    assert scan(last_close - timedelta(minutes=10))["expiry_reminders"] == 1
    assert scan(last_close - timedelta(minutes=5))["expiry_reminders"] == 0  # once
    assert [m.to[0] for m in mail.outbox] == ["alice@example.com"]
    assert "ends at Fri 13 Nov 2026, 16:00 UTC" in mail.outbox[0].body
    assert "Mon-Fri 09:00-17:00 (Europe/Berlin)" in mail.outbox[0].body


def test_nothing_when_the_last_window_has_closed(grant: Grant, scan: Any) -> None:
    saturday = datetime(2026, 11, 14, 12, 0, tzinfo=UTC)
    assert scan(saturday)["expiry_reminders"] == 0
    assert scan(END - timedelta(minutes=10))["expiry_reminders"] == 0
