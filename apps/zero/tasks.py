"""Celery tasks of the Zero sync: thin wrappers that decide when to retry.

Retry policy of ``zero.sync_resource``:

* transient Zero errors (network, timeout, 429, 5xx): retried up to ``max_retries`` (8)
  times after ``min(60, 2**n)`` seconds plus up to 50 % jitter, or after the server's
  ``Retry-After`` (capped at ``MAX_RETRY_AFTER``) when it sent one;
* permanent errors (4xx, invalid base rules): not retried; the grants show ``error``
  and the 5-minute reconcile tries again, so a fix in Zero or in the resource heals;
* another worker holds the resource's lease (``busy``): retried after about 2 s,
  up to ``BUSY_RETRIES`` times, without using up the error budget.

Nothing is dropped when retries run out: the resource's generation stays ahead of what
was synced (or its row records the failure) and ``zero.reconcile_all`` picks it up.
"""

from __future__ import annotations

import logging
import random
from typing import Any

from celery import shared_task

from apps.zero import sync

log = logging.getLogger(__name__)

MAX_BACKOFF = 60.0
MAX_RETRY_AFTER = 300.0
BUSY_DELAY = 2.0
BUSY_RETRIES = 60


def backoff(failures: int, retry_after: float | None = None) -> float:
    """Seconds before retry number ``failures + 1``: Retry-After when given, else
    capped exponential with jitter (so retries of many tasks do not arrive together)."""
    if retry_after is not None:
        return min(MAX_RETRY_AFTER, max(0.0, retry_after)) + random.uniform(0, 0.5)  # noqa: S311
    base = min(MAX_BACKOFF, 2.0**failures)
    return base + random.uniform(0, base / 2)  # noqa: S311


@shared_task(
    name="zero.sync_resource", bind=True, acks_late=True, max_retries=8, ignore_result=True
)
def sync_resource(
    self: Any, resource_id: int, force: bool = False, busy_waits: int = 0
) -> dict[str, Any]:
    """Sync one resource's Zero policy (see ``apps.zero.sync.sync_resource``).

    Returns quietly when the resource is gone. ``busy_waits`` counts retries spent
    waiting for another worker's lease; the rest of ``request.retries`` are failures.
    """
    outcome = sync.sync_resource(resource_id, force=force)
    if outcome.status == sync.MISSING:
        return {"status": outcome.status}
    if outcome.status == sync.BUSY:
        if busy_waits >= BUSY_RETRIES:
            # The generation is still ahead of what was synced: the reconcile catches up.
            log.warning("Zero sync of resource %s stayed busy; left to reconcile", resource_id)
            return {"status": outcome.status}
        raise self.retry(
            kwargs={"resource_id": resource_id, "force": force, "busy_waits": busy_waits + 1},
            countdown=BUSY_DELAY + random.uniform(0, 1),  # noqa: S311
            max_retries=self.max_retries + BUSY_RETRIES,
        )
    if outcome.status == sync.FAILED and outcome.transient:
        failures = self.request.retries - busy_waits
        if failures >= self.max_retries:
            log.error(
                "Zero sync of resource %s failed %d times; the reconcile will retry: %s",
                resource_id,
                failures + 1,
                outcome.error,
            )
            return {"status": outcome.status, "error": outcome.error}
        raise self.retry(
            kwargs={"resource_id": resource_id, "force": force, "busy_waits": busy_waits},
            countdown=backoff(failures, outcome.retry_after),
            max_retries=self.max_retries + BUSY_RETRIES,
        )
    return {"status": outcome.status, "summary": outcome.summary()}


@shared_task(name="zero.reconcile_all", ignore_result=True)
def reconcile_all() -> int:
    """Every 5 min (beat): enqueue a forced sync of every resource that may need one.

    Forced passes compare with Zero even when nothing changed here, so hand edits are
    repaired; resources whose last pass failed or whose generation is ahead are among
    them. Returns how many syncs were enqueued. Idempotent.
    """
    ids = sync.resources_to_reconcile()
    for resource_id in ids:
        sync_resource.delay(resource_id=resource_id, force=True)
    return len(ids)
