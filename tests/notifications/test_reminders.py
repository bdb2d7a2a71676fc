"""Reminders from the 30 s tick: before a grant ends (once per end) and for requests that wait."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone

from apps.access import events, services
from apps.access.models import Grant, Resource
from apps.notifications import services as outbox
from apps.notifications.models import Notification
from apps.notifications.tasks import tick
from tests.factories import AccessRequestFactory, GrantFactory, UserFactory

pytestmark = pytest.mark.django_db


def recipients() -> list[str]:
    return sorted(m.to[0] for m in mail.outbox)


@pytest.fixture
def scan(after_commit: Any) -> Any:
    """``scan(now=None)`` → counts: one tick's scan, with its on-commit sends run."""

    def run(now: datetime | None = None) -> dict[str, int]:
        with after_commit():
            return outbox.scan_reminders(now)

    return run


@pytest.fixture
def grant(people: dict[str, Any], resource: Resource) -> Grant:
    """Alice's grant, started an hour ago, ending in 10 minutes."""
    now = timezone.now()
    return GrantFactory(
        request__requester=people["alice"],
        request__resource=resource,
        not_before=now - timedelta(hours=1),
        expires_at=now + timedelta(minutes=10),
    )


def test_expiry_reminder_goes_once_to_the_grant_user_with_an_extension_link(
    grant: Grant, scan: Any, after_commit: Any
) -> None:
    assert scan()["expiry_reminders"] == 1
    assert recipients() == ["alice@example.com"]
    message = mail.outbox[0]
    end = timezone.localtime(grant.expires_at, UTC).strftime("%H:%M")
    assert message.subject == f"[jitportal] Your access to Grafana admin ends at {end} UTC"
    link = "https://jit.example.com/requests/new?resource=grafana"
    assert link in message.body
    assert f'href="{link}"' in message.alternatives[0][0]
    assert "https://jit.example.com/preferences" in message.body
    grant.refresh_from_db()
    assert grant.reminder_sent_at is not None

    # The next ticks find nothing to do.
    assert scan()["expiry_reminders"] == 0
    with after_commit():
        assert tick.delay().get()["expiry_reminders"] == 0
    assert len(mail.outbox) == 1


def test_extending_the_grant_earns_one_reminder_for_the_new_end(
    grant: Grant, people: dict[str, Any], scan: Any
) -> None:
    scan()
    services.extend_grant(
        grant,
        actor=people["bob"],
        new_expires_at=grant.expires_at + timedelta(minutes=60),
        reason="Incident still open",
    )
    grant.refresh_from_db()
    assert grant.reminder_sent_at is None
    # Not due yet: the new end is 70 minutes away.
    assert scan()["expiry_reminders"] == 0
    due = grant.expires_at - timedelta(minutes=14)
    assert scan(due)["expiry_reminders"] == 1
    assert scan(due + timedelta(minutes=1))["expiry_reminders"] == 0
    rows = Notification.objects.filter(event=events.EXPIRY_REMINDER, grant=grant)
    assert rows.count() == 2
    # The new reminder was stored at ``due``, 56 minutes from now; a worker sends it then.
    assert len(mail.outbox) == 1
    second = rows.order_by("created_at").last()
    assert second is not None
    assert outbox.deliver(second.pk, now=due).outcome == "sent"
    assert recipients() == ["alice@example.com", "alice@example.com"]
    end = timezone.localtime(grant.expires_at, UTC).strftime("%H:%M")
    assert mail.outbox[1].subject == f"[jitportal] Your access to Grafana admin ends at {end} UTC"


def test_no_reminder_for_people_who_turned_them_off(
    grant: Grant, people: dict[str, Any], scan: Any
) -> None:
    people["alice"].notify_expiry = False
    people["alice"].save()
    assert scan()["expiry_reminders"] == 0
    assert mail.outbox == []
    assert not Notification.objects.exists()


def test_no_reminder_before_the_window_or_for_ended_grants(
    people: dict[str, Any], resource: Resource, scan: Any
) -> None:
    now = timezone.now()
    GrantFactory(
        request__requester=people["alice"],
        request__resource=resource,
        not_before=now - timedelta(hours=1),
        expires_at=now + timedelta(minutes=16),
    )
    GrantFactory(
        request__requester=people["bob"],
        request__resource=resource,
        not_before=now - timedelta(hours=1),
        expires_at=now + timedelta(minutes=5),
        state="revoked",
    )
    assert scan()["expiry_reminders"] == 0
    assert mail.outbox == []


def test_a_request_waiting_past_half_its_ttl_reminds_approvers_once(
    people: dict[str, Any], resource: Resource, scan: Any
) -> None:
    resource.approvals_required = 2
    resource.save()
    now = timezone.now()
    old = AccessRequestFactory(
        requester=people["alice"], resource=resource, created_at=now - timedelta(hours=13)
    )
    AccessRequestFactory(
        requester=UserFactory(email="young@example.com"),
        resource=resource,
        created_at=now - timedelta(hours=11),
    )
    services.approve_request(old, approver=people["erin"])  # 1 of 2

    assert scan()["waiting_reminders"] == 1
    # Bob has not approved yet; Erin has, Alice asked, Root stays out (groups exist).
    assert recipients() == ["bob@example.com"]
    message = mail.outbox[0]
    assert message.subject == "[jitportal] Still waiting: Alice's request for Grafana admin"
    assert "Approvals so far: 1 of 2." in message.body
    assert f"https://jit.example.com/admin/access/accessrequest/{old.pk}/change/" in message.body
    old.refresh_from_db()
    assert old.reminded_at is not None

    assert scan()["waiting_reminders"] == 0
    assert len(mail.outbox) == 1


def test_the_tick_task_runs_the_scans(grant: Grant, after_commit: Any) -> None:
    with after_commit():
        counts = tick.delay().get()
    assert counts == {"expiry_reminders": 1, "waiting_reminders": 0, "requeued": 0}
    assert recipients() == ["alice@example.com"]
