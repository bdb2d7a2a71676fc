"""Celery tasks of the Zero sync: thin wrappers that decide when to retry.

Retry policy of ``zero.sync_resource``:

* transient Zero errors (network, timeout, 429, 5xx): retried up to ``max_retries`` (8)
  times after ``min(60, 2**n)`` seconds plus up to 50 % jitter. A ``Retry-After`` from the
  server is a floor under that backoff, never a replacement: a rate limit that asks for
  1 s must not burn every attempt in ten seconds;
* permanent errors (4xx, invalid base rules): not retried; the grants show ``error``;
* another worker holds the resource's lease (``busy``): the task ends at once, because
  the holder re-checks the generation before it releases the lease and settles this
  change too;
* Zero is still applying a changeset the portal applied: checked again after
  ``APPLY_RECHECK`` seconds, up to ``APPLY_RECHECKS`` times.

Nothing is dropped when retries run out. ``zero.tick`` (every 30 s) syncs every
resource whose revocations or expiries Zero has not confirmed, whose change waits for
a changeset, or whose generation is ahead of what was synced; so a revocation reaches
Zero within one tick of Zero recovering, not at the 5-minute reconcile. It also reads
each cluster's activity log once and force-syncs every managed policy someone else
changed since the last tick, so a console edit is repaired within one tick. Tick passes
do not retry: the next tick is their retry.

Window boundaries on a target that cannot close a rule by itself (no ``date``; Pomerium
Core): after every pass that ran, ``schedule_boundary`` queues ``zero.sync_resource`` with
``eta`` = the resource's next boundary (``PolicySync.due_at``, from ``apps.pomerium.windows``),
so the rule appears or disappears at that second. A boundary further than
``BOUNDARY_HORIZON`` away is approached in hops (a wake-up that only re-queues itself), so
no message waits in the broker longer than its redelivery timeout. Duplicates are
harmless: the first pass at the boundary writes, the others find nothing to do and queue
nothing. The tick is the fallback: it syncs every resource whose ``due_at`` is past, so
after a worker outage every overdue change is made within one tick of its return.
"""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta
from typing import Any

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from apps.pomerium import sync, watch
from apps.pomerium.models import PolicySync

log = logging.getLogger(__name__)

MAX_BACKOFF = 60.0
MAX_RETRY_AFTER = 300.0
APPLY_RECHECK = 1.0
APPLY_RECHECKS = 10


def backoff(failures: int, retry_after: float | None = None) -> float:
    """Seconds before retry number ``failures + 1``: capped exponential with jitter (so
    retries of many tasks do not arrive together), never less than the server's
    ``Retry-After`` (itself capped at ``MAX_RETRY_AFTER``)."""
    base = min(MAX_BACKOFF, 2.0**failures)
    delay = base + random.uniform(0, base / 2)  # noqa: S311
    if retry_after is not None:
        delay = max(delay, min(MAX_RETRY_AFTER, max(0.0, retry_after)))
    return delay


# Below Redis's default visibility timeout (1 h): an ETA message waiting longer would be
# delivered again (harmless, but noise).
BOUNDARY_HORIZON = timedelta(minutes=30)
BUSY_BOUNDARY_RETRY = 1.0


def schedule_boundary(
    resource_id: int, *, replacing: datetime | None = None, now: datetime | None = None
) -> datetime | None:
    """Queue a pass of the resource for its next window boundary (``sync.due_at``), or for
    ``BOUNDARY_HORIZON`` from now when that is later. Returns the eta queued, or None.

    One chain per resource: the eta queued is recorded (``PolicySync.boundary_eta``) with
    a conditional UPDATE, so the same eta is never queued twice, and a boundary pass
    (``replacing`` = its own eta) re-queues only if no newer eta was queued meanwhile
    (0 rows changed: someone else got there first). Never raises: when the broker is
    down, the tick is the fallback.
    """
    due = sync.due_at(resource_id)
    if due is None:
        return None
    now = now or timezone.now()
    eta = min(due, now + BOUNDARY_HORIZON)
    rows = PolicySync.objects.filter(resource_id=resource_id)
    if replacing is not None:
        # This chain's own message: it carries on only if no other eta was queued since.
        rows = rows.filter(boundary_eta=replacing)
    else:
        rows = rows.exclude(boundary_eta=eta)  # already queued for that second
    if not rows.update(boundary_eta=eta):
        return None
    try:
        sync_resource.apply_async(
            kwargs={"resource_id": resource_id, "boundary_eta": eta.isoformat()}, eta=eta
        )
    except Exception:
        log.exception("could not queue the boundary pass of resource %s", resource_id)
        PolicySync.objects.filter(resource_id=resource_id, boundary_eta=eta).update(
            boundary_eta=None
        )
        return None
    return eta


# Below the sync's lease (sync.LEASE_SECONDS, 120 s): a pass stuck on a slow Zero is
# interrupted, records its failure and frees the lease before another worker may claim it.
SYNC_SOFT_TIME_LIMIT = 90
SYNC_TIME_LIMIT = 110


@shared_task(
    name="zero.sync_resource",
    bind=True,
    acks_late=True,
    max_retries=8,
    ignore_result=True,
    soft_time_limit=SYNC_SOFT_TIME_LIMIT,
    time_limit=SYNC_TIME_LIMIT,
)
def sync_resource(
    self: Any,
    resource_id: int,
    force: bool = False,
    apply_checks: int = 0,
    from_tick: bool = False,
    boundary_eta: str | None = None,
) -> dict[str, Any]:
    """Sync one resource's Zero policy (see ``apps.pomerium.sync.sync_resource``).

    Returns quietly when the resource is gone. ``apply_checks`` counts retries spent
    waiting for Zero to finish applying; the rest of ``request.retries`` are failures.
    ``from_tick`` passes never retry. After a pass that ran, the resource's next window
    boundary is queued (``schedule_boundary``); a boundary pass (``boundary_eta``: the eta
    it was queued for) that finds nothing to do (early, or a wake-up on the way to a
    distant boundary) queues the next hop, unless a newer one was queued meanwhile.
    """
    outcome = sync.sync_resource(resource_id, force=force)
    if outcome.status == sync.SYNCED:
        schedule_boundary(resource_id)
    elif boundary_eta and outcome.status == sync.UP_TO_DATE:
        schedule_boundary(resource_id, replacing=datetime.fromisoformat(boundary_eta))
    kwargs: dict[str, Any] = {
        "resource_id": resource_id,
        "force": force,
        "apply_checks": apply_checks,
    }
    limit = self.max_retries + APPLY_RECHECKS
    if outcome.status == sync.MISSING:
        return {"status": outcome.status}
    if from_tick:  # the next tick is the retry
        return {"status": outcome.status, "summary": outcome.summary()}
    if outcome.status == sync.BUSY:
        if boundary_eta and self.request.retries < limit:
            # The holder may have read the windows just before this boundary: come back in
            # a second rather than leave the boundary to the tick.
            raise self.retry(
                kwargs={**kwargs, "boundary_eta": boundary_eta},
                countdown=BUSY_BOUNDARY_RETRY,
                max_retries=limit,
            )
        # The lease holder settles this change before it lets go (sync.sync_resource);
        # waiting here would only add a retry 2 s from now.
        return {"status": outcome.status}
    if outcome.status == sync.FAILED and outcome.transient:
        failures = self.request.retries - apply_checks
        if failures >= self.max_retries:
            log.error(
                "Zero sync of resource %s failed %d times; the tick keeps trying: %s",
                resource_id,
                failures + 1,
                outcome.error,
            )
            return {"status": outcome.status, "error": outcome.error}
        raise self.retry(
            kwargs=kwargs, countdown=backoff(failures, outcome.retry_after), max_retries=limit
        )
    if outcome.ok and outcome.applying and apply_checks < APPLY_RECHECKS:
        raise self.retry(
            kwargs={**kwargs, "apply_checks": apply_checks + 1, "force": False},
            countdown=APPLY_RECHECK,
            max_retries=limit,
        )
    return {"status": outcome.status, "summary": outcome.summary()}


@shared_task(name="zero.tick", ignore_result=True)
def tick() -> dict[str, int]:
    """Every 30 s (beat): repair what someone else changed since the last tick (one read of
    each cluster's activity log, ``watch.drifted_resources``: a forced sync per changed
    managed policy), sync what Zero has not confirmed yet, and raise the alarm on
    revocations that stay unenforced (see ``sync.flag_overdue_removals``). Idempotent."""
    drifted: set[int] = set()
    if settings.ZERO_SYNC_ENABLED:
        try:
            drifted, _ = watch.drifted_resources()
        except Exception:  # the watch must never keep the tick from its revocations
            log.exception("the Zero activity-log watch failed; the reconcile still runs")
    for resource_id in sorted(drifted):
        sync_resource.delay(resource_id=resource_id, force=True, from_tick=True)
    ids = [i for i in sync.resources_to_tick() if i not in drifted]
    for resource_id in ids:
        sync_resource.delay(resource_id=resource_id, from_tick=True)
    overdue = sync.flag_overdue_removals()
    return {"synced": len(ids) + len(drifted), "drifted": len(drifted), "overdue": overdue}


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
