"""Delivery: a failing mail server never touches the decision, is retried with backoff, and
ends recorded; duplicates send once; the tick recovers what the broker lost."""

from __future__ import annotations

import smtplib
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, ClassVar

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.message import EmailMessage
from django.utils import timezone
from kombu.exceptions import OperationalError

from apps.access import services
from apps.access.models import AccessRequest, Grant, Resource
from apps.access.states import GrantState, RequestState
from apps.notifications import services as outbox
from apps.notifications import tasks as notification_tasks
from apps.notifications.models import Notification, Status
from apps.notifications.tasks import send

pytestmark = pytest.mark.django_db


class DisconnectingBackend(BaseEmailBackend):
    """An SMTP server that hangs up on every message."""

    calls: ClassVar[int] = 0

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        type(self).calls += 1
        raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")


class RefusingBackend(BaseEmailBackend):
    """An SMTP server that does not know the recipient (a permanent 5xx)."""

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        raise smtplib.SMTPRecipientsRefused({"alice@example.com": (550, b"5.1.1 No such user")})


class BusyBackend(BaseEmailBackend):
    """An SMTP server that says "later" (a transient 4xx)."""

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        raise smtplib.SMTPDataError(451, b"4.3.0 Mail server temporarily rejected message")


HERE = "tests.notifications.test_delivery"


@pytest.fixture
def decided(
    people: dict[str, Any], resource: Resource, after_commit: Any, settings: Any
) -> tuple[AccessRequest, Notification]:
    """Alice's request, approved by Bob while the mail server hangs up."""
    req = services.submit_request(
        requester=people["alice"],
        resource=resource,
        duration_minutes=120,
        justification="Debugging the checkout outage",
    )
    settings.EMAIL_BACKEND = f"{HERE}.DisconnectingBackend"
    DisconnectingBackend.calls = 0
    with after_commit():
        services.approve_request(req, approver=people["bob"])
    return req, Notification.objects.get(recipient="alice@example.com")


def test_failing_smtp_leaves_the_decision_and_schedules_a_retry(
    decided: tuple[AccessRequest, Notification],
) -> None:
    req, row = decided
    req.refresh_from_db()
    assert req.state == RequestState.APPROVED
    assert Grant.objects.get(request=req).state == GrantState.ACTIVE
    assert mail.outbox == []
    # One attempt: the task's retry is due in 60 s, so the eager re-run was not let through.
    assert DisconnectingBackend.calls == 1
    assert (row.status, row.attempts) == (Status.PENDING, 1)
    assert row.last_error == "SMTP server disconnected: Connection unexpectedly closed"
    wait = (row.next_attempt_at - timezone.now()).total_seconds()
    assert 55 < wait <= 60


def test_retries_back_off_and_end_failed_with_a_readable_reason(
    decided: tuple[AccessRequest, Notification],
) -> None:
    req, row = decided
    at = row.next_attempt_at
    waits = []
    for _ in range(3):
        result = outbox.deliver(row.pk, now=at)
        assert result.outcome == "retry"
        waits.append(result.retry_in)
        row.refresh_from_db()
        at = row.next_attempt_at
    assert waits == [120, 240, 480]
    # Not yet due: a stray delivery is turned away without an attempt.
    assert outbox.deliver(row.pk, now=at - timedelta(minutes=1)).outcome == "skipped"
    assert outbox.deliver(row.pk, now=at).outcome == "failed"

    row.refresh_from_db()
    assert (row.status, row.attempts, row.sent_at) == (Status.FAILED, 5, None)
    assert row.last_error == (
        "gave up after 5 attempts: SMTP server disconnected: Connection unexpectedly closed"
    )
    assert DisconnectingBackend.calls == 5
    assert outbox.deliver(row.pk, now=at + timedelta(hours=1)).outcome == "skipped"
    req.refresh_from_db()
    assert req.state == RequestState.APPROVED


def test_a_permanent_smtp_refusal_fails_at_once(
    people: dict[str, Any], resource: Resource, after_commit: Any, settings: Any
) -> None:
    settings.EMAIL_BACKEND = f"{HERE}.RefusingBackend"
    with after_commit():
        req = services.submit_request(
            requester=people["alice"],
            resource=resource,
            duration_minutes=60,
            justification="Debugging the checkout outage",
        )
        services.reject_request(req, approver=people["bob"], reason="Not today")
    row = Notification.objects.get(recipient="alice@example.com")
    assert (row.status, row.attempts) == (Status.FAILED, 1)
    assert row.last_error == "SMTP server refused the recipient (550 5.1.1 No such user)"
    req.refresh_from_db()
    assert req.state == RequestState.REJECTED


def test_a_4xx_from_smtp_is_transient(
    decided: tuple[AccessRequest, Notification], settings: Any
) -> None:
    _, row = decided
    settings.EMAIL_BACKEND = f"{HERE}.BusyBackend"
    result = outbox.deliver(row.pk, now=row.next_attempt_at)
    assert (result.outcome, result.retry_in) == ("retry", 120)
    row.refresh_from_db()
    assert row.last_error == "SMTP 451: 4.3.0 Mail server temporarily rejected message"


def test_recovered_smtp_sends_on_the_next_attempt(
    decided: tuple[AccessRequest, Notification], settings: Any
) -> None:
    _, row = decided
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert outbox.deliver(row.pk, now=row.next_attempt_at).outcome == "sent"
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_error) == (Status.SENT, 2, "")
    assert [m.to for m in mail.outbox] == [["alice@example.com"]]


def test_duplicate_delivery_sends_once(
    people: dict[str, Any], resource: Resource, settings: Any
) -> None:
    services.submit_request(
        requester=people["alice"],
        resource=resource,
        duration_minutes=60,
        justification="Debugging the checkout outage",
    )
    req = AccessRequest.objects.get()
    (pk,) = outbox.store([m for m in _plan_submitted(req) if m.recipient == "bob@example.com"])
    send.delay(notification_id=pk)
    send.delay(notification_id=pk)
    assert outbox.deliver(pk).outcome == "skipped"
    assert [m.to for m in mail.outbox] == [["bob@example.com"]]
    assert Notification.objects.get(pk=pk).attempts == 1


def test_a_lease_held_by_another_worker_is_respected_until_it_runs_out(
    people: dict[str, Any], resource: Resource
) -> None:
    services.submit_request(
        requester=people["alice"],
        resource=resource,
        duration_minutes=60,
        justification="Debugging the checkout outage",
    )
    (pk, _) = outbox.store(_plan_submitted(AccessRequest.objects.get()))
    now = timezone.now()
    Notification.objects.filter(pk=pk).update(claimed_until=now + timedelta(minutes=2))
    assert outbox.deliver(pk, now=now).outcome == "skipped"
    assert mail.outbox == []
    # That worker died mid-send; once its lease is over the row is taken up again.
    assert outbox.deliver(pk, now=now + timedelta(minutes=3)).outcome == "sent"
    assert len(mail.outbox) == 1


def test_broker_down_stores_the_notices_and_the_tick_sends_them_later(
    people: dict[str, Any], resource: Resource, after_commit: Any, monkeypatch: Any
) -> None:
    from apps.notifications.tasks import notify

    def broker_down(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("Error 111 connecting to redis:6379. Connection refused.")

    monkeypatch.setattr(notify, "delay", broker_down)
    monkeypatch.setattr(send, "delay", broker_down)
    with after_commit():
        req = services.submit_request(
            requester=people["alice"],
            resource=resource,
            duration_minutes=60,
            justification="Debugging the checkout outage",
        )
    assert req.state == RequestState.PENDING
    rows = Notification.objects.order_by("recipient")
    assert [(n.recipient, n.status, n.attempts) for n in rows] == [
        ("bob@example.com", Status.PENDING, 0),
        ("erin@example.com", Status.PENDING, 0),
    ]
    assert mail.outbox == []
    # Still down: the tick tries, fails, and leaves the rows for later.
    later = timezone.now() + timedelta(minutes=6)
    assert notification_tasks.requeue_stuck(later) == 0
    monkeypatch.undo()

    # Back up. Rows younger than five minutes are not "stuck" yet...
    assert notification_tasks.requeue_stuck() == 0
    # ...older ones are handed to the workers again.
    Notification.objects.update(next_attempt_at=timezone.now() - timedelta(minutes=6))
    assert notification_tasks.requeue_stuck() == 2
    assert sorted(m.to[0] for m in mail.outbox) == ["bob@example.com", "erin@example.com"]
    assert set(Notification.objects.values_list("status", flat=True)) == {Status.SENT}


def test_rows_waiting_for_their_retry_are_not_stuck(
    decided: tuple[AccessRequest, Notification],
) -> None:
    _, row = decided
    assert notification_tasks.requeue_stuck(timezone.now() + timedelta(seconds=50)) == 0
    Notification.objects.filter(pk=row.pk).update(
        next_attempt_at=timezone.now() - timedelta(minutes=10)
    )
    assert notification_tasks.requeue_stuck() == 1


def _plan_submitted(req: AccessRequest) -> list[Any]:
    from apps.notifications.plans import request_submitted

    return request_submitted(request_id=req.pk)
