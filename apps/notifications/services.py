"""The notification outbox: store notices, scan for reminders, retry failed ones.

* ``dispatch(event, request_id=..., grant_id=...)`` plans the notices of a domain event
  (``plans``), stores one ``Notification`` per recipient and channel in its own
  transaction, and hands the new rows to the workers after commit. It runs after the
  decision committed, so nothing here can block or undo a decision. The same event
  dispatched twice stores its rows once (``dedup_key``).
* ``scan_reminders(now)`` claims due expiry reminders (``Grant.reminder_sent_at``) and
  overdue pending requests (``AccessRequest.reminded_at``) with conditional UPDATEs and
  stores their notices in the same transaction, so each is sent once.
* ``retry_failed(ids)`` puts failed rows back in the queue with fresh attempts.

Rows reach the workers through ``rows_stored``, sent on commit; ``tasks.enqueue`` receives
it (connected in ``NotificationsConfig.ready``), so the outbox never imports its tasks.
Delivering a row is ``delivery.deliver`` (re-exported here with ``DeliveryError``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

from apps.access import events
from apps.access.models import AccessRequest, Grant
from apps.access.services import reminders
from apps.access.states import OPEN_GRANT_STATES

from .delivery import MAX_ATTEMPTS, Delivery, DeliveryError, deliver
from .messages import Message
from .models import Notification, Status
from .plans import PLANNERS

__all__ = [
    "MAX_ATTEMPTS",
    "STUCK_AFTER",
    "Delivery",
    "DeliveryError",
    "deliver",
    "dispatch",
    "retry_failed",
    "rows_stored",
    "scan_reminders",
    "store",
]

log = logging.getLogger(__name__)

# A pending row this far past its due time was never picked up: re-enqueue it.
STUCK_AFTER = timedelta(minutes=5)
SCAN_BATCH = 500

# Sent on commit with ``ids``: rows for the workers (``tasks.enqueue`` receives it).
rows_stored = Signal()


def _hand_over(ids: list[int]) -> None:
    transaction.on_commit(lambda: rows_stored.send(sender=Notification, ids=ids))


# --- Storing -------------------------------------------------------------------------------


def dispatch(
    event: str,
    *,
    request_id: int | None = None,
    grant_id: int | None = None,
    now: datetime | None = None,
    **facts: Any,
) -> list[int]:
    """Store the notices of one domain event and hand them to the workers after commit.

    Returns the ids of the rows created now (none when the event was already dispatched,
    or no longer applies). Unknown events are logged and ignored.
    """
    planner = PLANNERS.get(event)
    if planner is None:
        log.warning("no notifications for event %s", event)
        return []
    return store(planner(request_id=request_id, grant_id=grant_id, **facts), now=now)


def store(messages: Iterable[Message], *, now: datetime | None = None) -> list[int]:
    """Create a row per message unless its ``dedup_key`` exists; new rows go to the workers
    on commit."""
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
            _hand_over(list(created_ids))
    return created_ids


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


def retry_failed(notification_ids: Iterable[int], *, now: datetime | None = None) -> int:
    """Give failed rows a fresh set of attempts and hand them to the workers; how many."""
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
        _hand_over(ids)
    return len(ids)
