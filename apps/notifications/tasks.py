"""Celery tasks of the notifications app: thin, keyword ids, the row records the outcome."""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, shared_task

from . import services

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

    The attempt count lives on the row (``services.MAX_ATTEMPTS``), not in Celery's retry
    counter, because the tick may re-enqueue a row as a fresh message.
    """
    result = services.deliver(notification_id)
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
    counts = services.run_tick()
    if any(counts.values()):
        log.info("notifications tick", extra=counts)
    return counts
