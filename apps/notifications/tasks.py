"""Celery tasks of the notifications app (thin, keyword ids, the row records the outcome),
and the one place rows are handed to the workers: ``enqueue`` (on ``services.rows_stored``)
and ``requeue_stuck`` (the tick)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from celery import Task, shared_task
from django.utils import timezone
from kombu.exceptions import OperationalError

from . import delivery, services
from .models import Notification

log = logging.getLogger(__name__)


@shared_task(
    bind=True,
    name="notifications.send",
    ignore_result=True,
    max_retries=None,
    soft_time_limit=60,  # above EMAIL_TIMEOUT and the Slack timeout: only a hung send
    time_limit=90,
)
def send(self: Task, notification_id: int) -> str:
    """Deliver one notification; on a transient failure retry after the row's backoff.

    The attempt count lives on the row (``delivery.MAX_ATTEMPTS``), not in Celery's retry
    counter, because the tick may re-enqueue a row as a fresh message.
    """
    result = delivery.deliver(notification_id)
    if result.retry_in is not None:
        raise self.retry(countdown=result.retry_in)
    return result.outcome


@shared_task(name="notifications.notify", ignore_result=True)
def notify(event: str, **ids: Any) -> None:
    """Plan and store the notices of one domain event, then enqueue their sending.

    Idempotent: a redelivered message plans nothing twice (``services.dispatch``)."""
    services.dispatch(event, **ids)


@shared_task(name="notifications.notify_compliance", ignore_result=True)
def notify_compliance(event: str, **facts: Any) -> None:
    """Plan and store the notices of an audit-stream alert or an access review's event
    (``compliance``). Idempotent: the rows are deduplicated."""
    from . import compliance

    services.store(compliance.plan(event, **facts))


# The task's name before the notify step moved here from apps.access: messages queued
# under it by the previous release are still worked off after an upgrade.
notify_previous_name = shared_task(name="access.notify", ignore_result=True)(notify.run)


@shared_task(name="notifications.tick", ignore_result=True)
def tick() -> dict[str, Any]:
    """Every 30 s (beat): due expiry reminders, overdue-request reminders, stuck rows."""
    counts = run_tick()
    if any(counts.values()):
        log.info("notifications tick", extra=counts)
    return counts


# --- Handing rows to the workers ---------------------------------------------------------


def enqueue(notification_ids: Iterable[int]) -> None:
    """Hand rows to the workers. A broker outage is logged; ``requeue_stuck`` catches up."""
    for pk in notification_ids:
        try:
            send.delay(notification_id=pk)
        except OperationalError:
            # The broker is unreachable; the next ones would only wait for it too.
            log.warning("broker unavailable; notification %s and later ones wait for the tick", pk)
            return
        except Exception:
            log.exception("could not enqueue notification %s; the tick will retry", pk)


def on_rows_stored(sender: Any, *, ids: Iterable[int], **_: Any) -> None:
    """``services.rows_stored`` (on commit): hand the new rows to the workers."""
    enqueue(ids)


def requeue_stuck(now: datetime | None = None, *, limit: int = 200) -> int:
    """Re-enqueue pending rows overdue by ``STUCK_AFTER``; returns how many were handed over.

    Each row's ``next_attempt_at`` is moved to ``now`` first (conditionally), so two ticks
    do not both enqueue it, and a row whose enqueue fails again waits another interval.
    """
    now = now or timezone.now()
    count = 0
    for pk in list(
        Notification.objects.stuck(now, services.STUCK_AFTER).values_list("pk", flat=True)[:limit]
    ):
        moved = (
            Notification.objects.stuck(now, services.STUCK_AFTER)
            .filter(pk=pk)
            .update(next_attempt_at=now)
        )
        if not moved:
            continue
        try:
            send.delay(notification_id=pk)
        except OperationalError:
            log.warning("broker still unavailable; notifications stay queued")
            break
        except Exception:
            log.exception("could not enqueue notification %s", pk)
            continue
        count += 1
    return count


def run_tick(now: datetime | None = None) -> dict[str, Any]:
    """The periodic work of the notifications app (every 30 s from beat)."""
    now = now or timezone.now()
    counts: dict[str, Any] = services.scan_reminders(now)
    counts["requeued"] = requeue_stuck(now)
    return counts
