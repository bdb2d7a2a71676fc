"""The notification outbox: store notices, deliver them, scan for reminders, recover.

* ``dispatch(event, request_id=..., grant_id=...)`` plans the notices of a domain event
  (``plans``), stores one ``Notification`` per recipient and channel in its own
  transaction, and enqueues ``notifications.send`` for each after commit. It runs after
  the decision committed, so nothing here can block or undo a decision. The same event
  dispatched twice stores its rows once (``dedup_key``).
* ``deliver(notification_id)`` sends one row: it claims the row with a conditional UPDATE
  (a lease), so two deliveries of the same task send once; records sent / failed on the
  row; and tells the task whether and when to retry.
* ``scan_reminders(now)`` claims due expiry reminders (``Grant.reminder_sent_at``) and
  overdue pending requests (``AccessRequest.reminded_at``) with conditional UPDATEs and
  stores their notices in the same transaction, so each is sent once.
* ``requeue_stuck(now)`` re-enqueues rows that should have been attempted minutes ago
  (the broker was down when they were stored or retried).
* ``retry_failed(ids)`` puts failed rows back in the queue with fresh attempts.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from kombu.exceptions import OperationalError

from apps.access import events
from apps.access.models import AccessRequest, Grant, Resource
from apps.access.services import reminders
from apps.access.states import OPEN_GRANT_STATES

from . import channels, slack
from .messages import Message
from .models import Channel, Notification, Status
from .plans import PLANNERS

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
BACKOFF_BASE_SECONDS = 60  # 60, 120, 240, 480 s between the five attempts
BACKOFF_CAP_SECONDS = 900
# Longer than any send can take (SMTP and Slack time out well before), so a lease only
# runs out when its worker died.
LEASE = timedelta(minutes=5)
# A pending row this far past its due time was never picked up: re-enqueue it.
STUCK_AFTER = timedelta(minutes=5)
# Tolerates clock skew between the worker that scheduled a retry and the one running it.
CLOCK_GRACE = timedelta(seconds=5)
SMTP_TIMEOUT_SECONDS = 30
SCAN_BATCH = 500
ERROR_LIMIT = 500


class DeliveryError(Exception):
    """Sending failed. ``str(exc)`` is a readable reason with no secret in it."""

    def __init__(self, message: str, *, permanent: bool, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after


@dataclass(frozen=True)
class Delivery:
    """What ``deliver`` did: ``sent``, ``failed``, ``retry`` (in ``retry_in`` s) or ``skipped``."""

    outcome: Literal["sent", "failed", "retry", "skipped"]
    retry_in: int | None = None


# --- Storing -------------------------------------------------------------------------------


def dispatch(
    event: str,
    *,
    request_id: int | None = None,
    grant_id: int | None = None,
    now: datetime | None = None,
    **facts: Any,
) -> list[int]:
    """Store the notices of one domain event and enqueue their delivery after commit.

    Returns the ids of the rows created now (none when the event was already dispatched,
    or no longer applies). Unknown events are logged and ignored.
    """
    planner = PLANNERS.get(event)
    if planner is None:
        log.warning("no notifications for event %s", event)
        return []
    return store(planner(request_id=request_id, grant_id=grant_id, **facts), now=now)


def store(messages: Iterable[Message], *, now: datetime | None = None) -> list[int]:
    """Create a row per message unless its ``dedup_key`` exists; enqueue new rows on commit."""
    now = now or timezone.now()
    created_ids: list[int] = []
    with transaction.atomic():
        for message in messages:
            row, created = Notification.objects.get_or_create(
                dedup_key=message.dedup_key,
                defaults={
                    "event": message.event,
                    "channel": message.channel,
                    "recipient": message.recipient,
                    "subject": message.subject,
                    "body": message.body,
                    "body_html": message.body_html,
                    "payload": message.payload,
                    "request_id": message.request_id,
                    "grant_id": message.grant_id,
                    "created_at": now,
                    "next_attempt_at": now,
                },
            )
            if created:
                created_ids.append(row.pk)
        if created_ids:
            ids = list(created_ids)
            transaction.on_commit(lambda: enqueue(ids))
    return created_ids


def enqueue(notification_ids: Iterable[int]) -> None:
    """Hand rows to the workers. A broker outage is logged; ``requeue_stuck`` catches up."""
    from .tasks import send

    for pk in notification_ids:
        try:
            send.delay(notification_id=pk)
        except OperationalError:
            # The broker is unreachable; the next ones would only wait for it too.
            log.warning("broker unavailable; notification %s and later ones wait for the tick", pk)
            return
        except Exception:
            log.exception("could not enqueue notification %s; the tick will retry", pk)


# --- Delivering ----------------------------------------------------------------------------


def backoff_seconds(attempts: int, retry_after: int | None = None) -> int:
    """Wait before attempt ``attempts + 1``: exponential, capped, at least Slack's Retry-After."""
    wait = min(BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0), BACKOFF_CAP_SECONDS)
    if retry_after:
        wait = min(max(wait, retry_after), BACKOFF_CAP_SECONDS)
    return wait


def deliver(notification_id: int, *, now: datetime | None = None) -> Delivery:
    """Send one notification, at most once per claim, and record the outcome on its row.

    Skips (``skipped``) when the row is gone, no longer pending, not yet due, or leased by
    another worker. Otherwise counts an attempt and sends; on success the row is ``sent``;
    on a permanent failure, or a transient one at the ``MAX_ATTEMPTS``-th attempt, the row
    is ``failed`` with a readable ``last_error``; on another transient failure the row
    stays pending with ``next_attempt_at`` set and the result says when to retry.
    """
    now = now or timezone.now()
    claimed = (
        Notification.objects.pending()
        .unclaimed_at(now)
        .filter(pk=notification_id, next_attempt_at__lte=now + CLOCK_GRACE)
        .update(claimed_until=now + LEASE, attempts=F("attempts") + 1)
    )
    if not claimed:
        return Delivery("skipped")
    note = Notification.objects.select_related("request__resource", "grant__resource").get(
        pk=notification_id
    )
    try:
        if note.channel == Channel.SLACK:
            _send_slack(note)
        elif note.channel == Channel.EMAIL:
            _send_email(note)
        else:
            _send_registered(note)
    except DeliveryError as exc:
        return _record_failure(note, exc, now)
    except Exception as exc:
        # A bug or an unforeseen backend error: retried like a transient one, but loudly.
        log.exception("notification %s: unexpected error while sending", note.pk)
        return _record_failure(
            note, DeliveryError(f"unexpected error ({type(exc).__name__})", permanent=False), now
        )
    Notification.objects.filter(pk=note.pk).update(
        status=Status.SENT, sent_at=now, claimed_until=None, last_error=""
    )
    log.info("notification %s sent (%s %s)", note.pk, note.channel, note.event)
    return Delivery("sent")


def _record_failure(note: Notification, exc: DeliveryError, now: datetime) -> Delivery:
    reason = str(exc)[:ERROR_LIMIT]
    if exc.permanent or note.attempts >= MAX_ATTEMPTS:
        if not exc.permanent:
            reason = f"gave up after {note.attempts} attempts: {reason}"[:ERROR_LIMIT]
        Notification.objects.filter(pk=note.pk).update(
            status=Status.FAILED, last_error=reason, claimed_until=None
        )
        log.warning("notification %s failed: %s", note.pk, reason)
        return Delivery("failed")
    wait = backoff_seconds(note.attempts, exc.retry_after)
    Notification.objects.filter(pk=note.pk).update(
        last_error=reason, claimed_until=None, next_attempt_at=now + timedelta(seconds=wait)
    )
    log.info(
        "notification %s attempt %s failed, retry in %ss: %s", note.pk, note.attempts, wait, reason
    )
    return Delivery("retry", retry_in=wait)


def _smtp_reason(exc: smtplib.SMTPResponseException) -> str:
    text = (
        exc.smtp_error.decode(errors="replace")
        if isinstance(exc.smtp_error, bytes)
        else str(exc.smtp_error)
    )
    return f"SMTP {exc.smtp_code}: {' '.join(text.split())}"


def _send_email(note: Notification) -> None:
    connection = get_connection(
        timeout=getattr(settings, "EMAIL_TIMEOUT", None) or SMTP_TIMEOUT_SECONDS
    )
    message = EmailMultiAlternatives(
        subject=note.subject,
        body=note.body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[note.recipient],
        connection=connection,
        # RFC 3834: tells auto-responders not to answer.
        headers={"Auto-Submitted": "auto-generated"},
    )
    if note.body_html:
        message.attach_alternative(note.body_html, "text/html")
    try:
        message.send()
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        raise DeliveryError(
            "SMTP server refused the recipient ("
            + ", ".join(
                f"{code} {msg.decode(errors='replace') if isinstance(msg, bytes) else msg}"
                for code, msg in exc.recipients.values()
            )
            + ")",
            permanent=bool(codes) and all(500 <= code < 600 for code in codes),
        ) from None
    except smtplib.SMTPResponseException as exc:
        # 5xx is the server's final word (bad address, authentication); 4xx means later.
        raise DeliveryError(_smtp_reason(exc), permanent=500 <= exc.smtp_code < 600) from None
    except smtplib.SMTPServerDisconnected as exc:
        raise DeliveryError(f"SMTP server disconnected: {exc}", permanent=False) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"SMTP error: {type(exc).__name__}: {exc}", permanent=False) from None


def _resource_of(note: Notification) -> Resource | None:
    if note.request is not None:
        return note.request.resource
    if note.grant is not None:
        return note.grant.resource
    return Resource.objects.filter(slug=note.recipient.removeprefix("slack:")).first()


def _send_slack(note: Notification) -> None:
    resource = _resource_of(note)
    url = resource.slack_webhook_url if resource is not None else ""
    if not url:
        raise DeliveryError("the resource has no Slack webhook any more", permanent=True)
    try:
        slack.post_message(url, note.payload or {"text": note.body})
    except slack.SlackError as exc:
        raise DeliveryError(
            slack.redact(str(exc), url), permanent=exc.permanent, retry_after=exc.retry_after
        ) from None


def _send_registered(note: Notification) -> None:
    sender = channels.sender_for(note.channel)
    if sender is None:
        raise DeliveryError(f"nothing delivers {note.channel} notices here", permanent=True)
    sender(note)


# --- Periodic work -------------------------------------------------------------------------


def scan_reminders(now: datetime | None = None) -> dict[str, int]:
    """Store the reminders that are due at ``now``; each once. Returns counts by kind.

    Expiry: an open grant that started and ends within ``EXPIRY_REMINDER_MINUTES`` (with a
    schedule: whose last window closes within it), whose
    user wants reminders, and whose ``reminder_sent_at`` is empty (``extend_grant`` empties
    it, so each grant end gets its own reminder). Waiting: a pending request older than
    half of ``REQUEST_PENDING_TTL_HOURS`` and not yet reminded about. Each row is claimed
    with a conditional UPDATE (also on ``expires_at``, so an extension racing the scan
    wins) and its notices are stored in the same transaction.
    """
    now = now or timezone.now()
    counts = {"expiry_reminders": 0, "waiting_reminders": 0}
    lead = timedelta(minutes=settings.EXPIRY_REMINDER_MINUTES)
    open_grants = Grant.objects.filter(
        state__in=OPEN_GRANT_STATES,
        reminder_sent_at__isnull=True,
        not_before__lte=now,
        expires_at__gt=now,
        user__notify_expiry=True,
    )
    due_grants = list(
        open_grants.filter(schedule__isnull=True, expires_at__lte=now + lead).values_list(
            "pk", "expires_at"
        )[:SCAN_BATCH]
    )
    # A grant with a recurring window really ends when its last window closes, which can be
    # days before its overall end: remind before that close, not before each daily one.
    for grant in open_grants.filter(schedule__isnull=False)[:SCAN_BATCH]:
        last = grant.access_ends_at()
        if now < last <= now + lead:
            due_grants.append((grant.pk, grant.expires_at))
    for pk, ends in due_grants:
        with transaction.atomic():
            if reminders.claim_expiry_reminder(pk, ends=ends, now=now):
                store(PLANNERS[events.EXPIRY_REMINDER](grant_id=pk), now=now)
                counts["expiry_reminders"] += 1
    waited = timedelta(hours=settings.REQUEST_PENDING_TTL_HOURS) / 2
    overdue = (
        AccessRequest.objects.pending()
        .filter(reminded_at__isnull=True, created_at__lte=now - waited, expires_at__gt=now)
        .values_list("pk", flat=True)[:SCAN_BATCH]
    )
    for pk in list(overdue):
        with transaction.atomic():
            if reminders.claim_waiting_reminder(pk, now=now):
                store(PLANNERS[events.REQUEST_WAITING](request_id=pk), now=now)
                counts["waiting_reminders"] += 1
    return counts


def requeue_stuck(now: datetime | None = None, *, limit: int = 200) -> int:
    """Re-enqueue pending rows overdue by ``STUCK_AFTER``; returns how many were handed over.

    Each row's ``next_attempt_at`` is moved to ``now`` first (conditionally), so two ticks
    do not both enqueue it, and a row whose enqueue fails again waits another interval.
    """
    now = now or timezone.now()
    count = 0
    for pk in list(
        Notification.objects.stuck(now, STUCK_AFTER).values_list("pk", flat=True)[:limit]
    ):
        moved = (
            Notification.objects.stuck(now, STUCK_AFTER).filter(pk=pk).update(next_attempt_at=now)
        )
        if not moved:
            continue
        try:
            from .tasks import send

            send.delay(notification_id=pk)
        except OperationalError:
            log.warning("broker still unavailable; notifications stay queued")
            break
        except Exception:
            log.exception("could not enqueue notification %s", pk)
            continue
        count += 1
    return count


def retry_failed(notification_ids: Iterable[int], *, now: datetime | None = None) -> int:
    """Give failed rows a fresh set of attempts and enqueue them. Returns how many."""
    now = now or timezone.now()
    with transaction.atomic():
        ids = list(
            Notification.objects.filter(pk__in=list(notification_ids), status=Status.FAILED)
            .select_for_update()
            .values_list("pk", flat=True)
        )
        Notification.objects.filter(pk__in=ids).update(
            status=Status.PENDING, attempts=0, next_attempt_at=now, claimed_until=None
        )
        transaction.on_commit(lambda: enqueue(ids))
    return len(ids)


def run_tick(now: datetime | None = None) -> dict[str, Any]:
    """The periodic work of the notifications app (every 30 s from beat)."""
    now = now or timezone.now()
    counts: dict[str, Any] = scan_reminders(now)
    counts["requeued"] = requeue_stuck(now)
    return counts
