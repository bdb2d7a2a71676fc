"""Celery tasks of the audit app: the stream's runs (thin; the row records the outcome)."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from .stream import sender

log = logging.getLogger(__name__)


@shared_task(
    name="audit.stream",
    ignore_result=True,
    # Above a run's own limit (sender.RUN_SECONDS) plus one batch's send; below the lease.
    soft_time_limit=120,
    time_limit=150,
)
def stream(destination: str) -> str:
    """Send destination ``destination`` what it has not acknowledged yet; schedule the
    retry after a failure, or the next run when this one's time was up."""
    result = sender.pump(destination)
    if result.outcome == "failed" and result.retry_in is not None:
        sender.enqueue(destination, countdown=result.retry_in)
    elif result.outcome == "more":
        sender.enqueue(destination)
    return result.outcome


@shared_task(name="audit.stream_tick", ignore_result=True)
def stream_tick() -> dict[str, Any]:
    """The beat's fallback (every 15 s): run every destination that is behind and due, in
    case a nudge or a scheduled retry was lost (the broker was down, a worker died)."""
    names = sender.due_names()
    for name in names:
        sender.enqueue(name)
    if names:
        log.info("audit stream tick", extra={"destinations": names})
    return {"enqueued": len(names)}
