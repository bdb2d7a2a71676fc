"""Celery tasks of the access domain: thin, named, idempotent."""

from __future__ import annotations

import logging

from celery import shared_task

from . import services

log = logging.getLogger(__name__)


@shared_task(name="access.tick", ignore_result=True)
def tick() -> dict[str, int]:
    """Every 30 s (beat): expire stale requests, start and end grants."""
    counts = services.expire_due()
    if any(counts.values()):
        log.info("access tick", extra=counts)
    return counts
