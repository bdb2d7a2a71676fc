"""Celery tasks of the reviews app: the periodic tick (thin; the services do the work)."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from . import schedules, services

log = logging.getLogger(__name__)


@shared_task(name="reviews.tick", ignore_result=True)
def tick() -> dict[str, Any]:
    """Every 5 minutes (beat): open each schedule's campaign for the current period if it
    has none, and send the reminders that are due. Idempotent: claims are conditional."""
    counts: dict[str, Any] = {"opened": len(schedules.open_due())}
    counts.update(services.send_reminders())
    if any(counts.values()):
        log.info("reviews tick", extra=counts)
    return counts
