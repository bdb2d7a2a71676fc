"""Sending the trail to one destination: claim it, send batches, move the cursor.

``pump(name)`` is the one way entries leave for a destination:

1. **Claim** the destination's row with a conditional UPDATE (a lease of ``LEASE``): one
   sender per destination at a time; a destination waiting out its backoff is not claimed.
2. **Read** the next batch after the cursor with the export's own writer
   (``export.chunks(..., "jsonl")``: COPY on PostgreSQL, the Python writer elsewhere), so
   each line is exactly what ``export_audit --format jsonl`` writes for that entry.
   ``seq`` is gap-free and committed in order, so the entries after the cursor are always a
   contiguous run and a batch is a ``seq`` range.
3. **Send** it (``transports``). Only an acknowledgement moves the cursor, in a conditional
   UPDATE that also checks the lease is still ours. A crash, a timeout or a lost answer
   leaves the cursor where it was, so the batch is sent again: at least once, in order, a
   repeat with the same ``seq`` (receivers drop duplicates by ``seq``).
4. On failure, record it on the row and back off exponentially, capped
   (``AUDIT_STREAM_RETRY_BASE_SECONDS`` doubling up to ``AUDIT_STREAM_RETRY_MAX_SECONDS``;
   a refusal waits the cap). A refusal, or an outage longer than
   ``AUDIT_STREAM_ALERT_AFTER_SECONDS``, is written to the trail (``audit.stream_refused``)
   and announced once (``signals.stream_alert``: the notifications app tells the
   superusers); the first delivery afterwards writes ``audit.stream_recovered``.
5. **Release** the lease, then look once more: an entry committed while we held the lease
   had its nudge turned away, so if anything is newer than the cursor we claim again.

A run stops after ``RUN_SECONDS`` and asks for another (so one destination's backlog does
not hold a worker for hours). ``nudge()`` is the audit writer's commit hook: it enqueues a
run per destination after every audited commit, without ever waiting on the SIEM (or on
the broker: a failed enqueue is logged, and the beat tick catches up).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .. import export
from ..models import AuditEvent, StreamDestination
from ..services import atomic, record
from . import config, signals
from .actions import StreamAction
from .transports import Batch, DeliveryError, TooLarge, transport_for

log = logging.getLogger(__name__)

# Longer than a run can last (RUN_SECONDS, plus one batch's send and read), so a lease runs
# out only when its worker died; then the next run takes over after at most this long.
LEASE = timedelta(minutes=3)
RUN_SECONDS = 20.0
# Tolerates clock skew between the worker that set a backoff and the one running now.
CLOCK_GRACE = timedelta(milliseconds=100)


@dataclass(frozen=True)
class PumpResult:
    """What one ``pump`` did. ``outcome``: ``caught_up``, ``more`` (the run's time was up
    with entries left), ``failed``, ``busy`` (another sender holds the lease), ``waiting``
    (backing off) or ``not_configured``. ``retry_in``: seconds until the next attempt."""

    outcome: str
    sent: int = 0
    cursor: int = 0
    retry_in: float | None = None
    error: str = ""


def head_seq() -> int:
    return int(AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0)


def destination_rows() -> dict[str, StreamDestination]:
    """The row of every configured destination (created at cursor 0 when first seen)."""
    rows = {}
    for destination in config.destinations():
        row, _ = StreamDestination.objects.get_or_create(name=destination.name)
        rows[destination.name] = row
    return rows


# --- Reading ---------------------------------------------------------------------------------


def read_batch(cursor: int, *, limit: int, max_bytes: int) -> Batch | None:
    """The entries after ``cursor`` (at most ``limit``, and at most ``max_bytes`` of lines
    but always one), as export lines; None when there is nothing after the cursor."""
    entries = AuditEvent.objects.filter(seq__gt=cursor, seq__lte=cursor + limit)
    pieces = export.encoded(export.chunks(export.entries(entries), "jsonl"))
    data = bytearray()
    for piece in pieces:
        data += piece
        if len(data) > max_bytes and data.find(b"\n") < len(data) - 1:
            close = getattr(pieces, "close", None)
            if close is not None:
                close()  # stop reading early: the rest is read next time
            break
    if len(data) > max_bytes:
        # Whole lines up to max_bytes, and at least the first line.
        end = data.rfind(b"\n", 0, max_bytes)
        del data[(end if end >= 0 else data.find(b"\n")) + 1 :]
    if not data:
        return None
    count = data.count(b"\n")
    first, last = cursor + 1, cursor + count
    # The lines are the entries after the cursor in seq order; prove it at both ends.
    last_start = data.rfind(b"\n", 0, len(data) - 1) + 1
    for seq, start in ((first, 0), (last, last_start)):
        if not data.startswith(b'{"seq":%d,' % seq, start):
            raise RuntimeError(
                f"export line out of step at #{seq}: {bytes(data[start : start + 40])!r}"
            )
    return Batch(first, count, bytes(data))


# One read takes this many batches at once: each read has a fixed cost (a round trip,
# planning) that per-batch reads paid again for every batch.
WINDOW = 8


def split(window: Batch, *, limit: int, max_bytes: int) -> list[Batch]:
    """``window`` cut into batches of at most ``limit`` entries and ``max_bytes`` bytes
    (a longer line goes alone)."""
    data = window.data
    batches: list[Batch] = []
    seq, start = window.first_seq, 0
    while start < len(data):
        end, count = start, 0
        while count < limit and end < len(data):
            line_end = data.index(b"\n", end) + 1
            if count and line_end - start > max_bytes:
                break
            end, count = line_end, count + 1
        batches.append(Batch(seq, count, data[start:end]))
        seq, start = seq + count, end
    return batches


def read_window(cursor: int, *, limit: int, max_bytes: int) -> list[Batch]:
    """The next batches after ``cursor`` (up to ``WINDOW`` of them), read at once."""
    window = read_batch(cursor, limit=limit * WINDOW, max_bytes=max_bytes * WINDOW)
    return [] if window is None else split(window, limit=limit, max_bytes=max_bytes)


# --- The lease --------------------------------------------------------------------------------


def _claim(
    name: str, owner: str, now: datetime, *, force: bool = False
) -> StreamDestination | None:
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now + CLOCK_GRACE)
    free = Q(leased_until__isnull=True) | Q(leased_until__lte=now)
    rows = StreamDestination.objects.filter(free, name=name)
    if not force:
        rows = rows.filter(due)
    if not rows.update(leased_until=now + LEASE, lease_owner=owner, last_attempt_at=now):
        return None
    return StreamDestination.objects.get(name=name)


def _release(name: str, owner: str) -> None:
    StreamDestination.objects.filter(name=name, lease_owner=owner).update(
        leased_until=None, lease_owner=""
    )


# --- Outcomes ---------------------------------------------------------------------------------


def backoff_seconds(failures: int, *, refused: bool, retry_after: float | None = None) -> float:
    """Wait before the next attempt: base x 2^(failures-1), capped; a refusal waits the cap."""
    cfg = config.current()
    if refused:
        return cfg.retry_max
    wait = min(cfg.retry_base * 2 ** max(failures - 1, 0), cfg.retry_max)
    if retry_after:
        wait = min(max(wait, retry_after), cfg.retry_max)
    return wait


def _advance(row: StreamDestination, owner: str, last_seq: int) -> bool:
    """Move the cursor to ``last_seq`` (acknowledged), if we still hold the lease."""
    now = timezone.now()
    recovered = row.alerted_at is not None
    with atomic():
        moved = StreamDestination.objects.filter(
            pk=row.pk, lease_owner=owner, cursor__lt=last_seq
        ).update(
            cursor=last_seq,
            acked_at=now,
            last_success_at=now,
            failures=0,
            failing_since=None,
            refused=False,
            next_attempt_at=None,
            alerted_at=None,
            leased_until=now + LEASE,
        )
        if moved and recovered:
            record(
                StreamAction.RECOVERED,
                details={
                    "destination": row.name,
                    "cursor": last_seq,
                    "failing_since": row.failing_since.isoformat() if row.failing_since else None,
                },
            )
    if moved:
        row.alerted_at = None
        row.failures = 0
        row.failing_since = None
        row.cursor = last_seq
    return bool(moved)


def _fail(row: StreamDestination, owner: str, exc: DeliveryError, cfg: config.Settings) -> float:
    """Record a failed attempt; alert once when it is a refusal or has lasted too long.
    Returns the seconds until the next attempt."""
    now = timezone.now()
    failures = row.failures + 1
    wait = backoff_seconds(failures, refused=exc.refused, retry_after=exc.retry_after)
    since = row.failing_since or now
    alert = row.alerted_at is None and (
        exc.refused or (now - since).total_seconds() >= cfg.alert_after
    )
    changes: dict[str, Any] = {
        "failures": failures,
        "failing_since": since,
        "last_error": str(exc),
        "last_error_at": now,
        "refused": exc.refused,
        "next_attempt_at": now + timedelta(seconds=wait),
    }
    if alert:
        changes["alerted_at"] = now
    with atomic():
        updated = StreamDestination.objects.filter(pk=row.pk, lease_owner=owner).update(**changes)
        if updated and alert:
            details = {
                "destination": row.name,
                "error": str(exc),
                "refused": exc.refused,
                "cursor": row.cursor,
                "failing_since": since.isoformat(),
            }
            record(StreamAction.REFUSED, details=details)
            transaction.on_commit(
                lambda: signals.send_alert(
                    destination=row.name, error=str(exc), refused=exc.refused
                )
            )
    log.warning("audit stream: %s (retry in %.0f s)", exc, wait)
    return wait


# --- Pumping ----------------------------------------------------------------------------------


class _InOrder:
    """Sends batches one after the other in a thread of its own; once one fails, those
    queued behind it are not sent (a later batch never reaches the receiver before an
    earlier one)."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.failed = threading.Event()
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-stream")

    def _send(self, batch: Batch) -> bool:
        if self.failed.is_set():
            return False
        try:
            self.transport.send(batch)
        except BaseException:
            self.failed.set()
            raise
        return True

    def submit(self, batches: list[Batch]) -> list[Future[bool]]:
        return [self.pool.submit(self._send, batch) for batch in batches]

    def close(self) -> None:
        self.failed.set()
        self.pool.shutdown(wait=True)


def _run(row: StreamDestination, owner: str, deadline: float) -> PumpResult:
    """Send batches until caught up, out of time, or a failure.

    Batches are read ``WINDOW`` at a time. While one window's batches go out, in order, in
    a thread of their own, this thread (which alone uses the database) reads the next
    window and moves the cursor as the acknowledgements come in; so a backlog drains at the
    pace of the slower of reading and sending, not their sum. A batch is sent only after
    the one before it was acknowledged: the order on the wire is the order of ``seq``.
    """
    destination = next(d for d in config.destinations() if d.name == row.name)
    cfg = config.current()
    transport = transport_for(destination, cfg)
    limit = cfg.batch
    sent = 0
    sender = _InOrder(transport)
    try:
        ready = read_window(row.cursor, limit=limit, max_bytes=cfg.batch_bytes)
        while ready:
            if time.monotonic() >= deadline:
                return PumpResult("more", sent, row.cursor)
            acks = sender.submit(ready)
            following = read_window(ready[-1].last_seq, limit=limit, max_bytes=cfg.batch_bytes)
            for batch, ack in zip(ready, acks, strict=True):
                try:
                    ack.result()
                except TooLarge:
                    if batch.count == 1:
                        raise
                    for later in acks:
                        later.cancel()
                    for later in acks:
                        if not later.cancelled():
                            later.exception()  # wait for the queue to drain (all skipped)
                    limit = max(1, batch.count // 2)  # for the rest of this run
                    sender.failed.clear()
                    following = read_window(row.cursor, limit=limit, max_bytes=cfg.batch_bytes)
                    break
                if not _advance(row, owner, batch.last_seq):
                    log.warning("audit stream %s: lease lost; another sender goes on", row.name)
                    return PumpResult("busy", sent, row.cursor)
                sent += batch.count
                if time.monotonic() >= deadline and batch is not ready[-1]:
                    # Out of time mid-window: stop sending; a batch already on its way
                    # without its cursor moved is sent again next run (the same seqs).
                    sender.failed.set()
                    return PumpResult("more", sent, row.cursor)
            ready = following
        return PumpResult("caught_up", sent, row.cursor)
    except DeliveryError as exc:
        wait = _fail(row, owner, exc, cfg)
        return PumpResult("failed", sent, row.cursor, retry_in=wait, error=str(exc))
    except Exception as exc:
        # A bug or an unforeseen error: retried like an outage, but loudly.
        log.exception("audit stream %s: unexpected error while sending", row.name)
        error = DeliveryError(f"{row.name}: unexpected error ({type(exc).__name__})", refused=False)
        wait = _fail(row, owner, error, cfg)
        return PumpResult("failed", sent, row.cursor, retry_in=wait, error=str(error))
    finally:
        sender.close()
        transport.close()


def pump(name: str, *, force: bool = False, run_seconds: float = RUN_SECONDS) -> PumpResult:
    """Send what destination ``name`` has not acknowledged yet (see the module docstring).

    ``force`` ignores the backoff (an operator's "retry now"), never the lease.
    """
    if not any(d.name == name for d in config.destinations()):
        return PumpResult("not_configured")
    StreamDestination.objects.get_or_create(name=name)
    owner = uuid.uuid4().hex
    deadline = time.monotonic() + run_seconds
    sent = 0
    result = PumpResult("busy")
    while True:
        row = _claim(name, owner, timezone.now(), force=force)
        if row is None:
            if sent:
                break
            waiting = StreamDestination.objects.filter(
                name=name, next_attempt_at__gt=timezone.now() + CLOCK_GRACE
            ).exists()
            return PumpResult("waiting" if waiting else "busy")
        try:
            result = _run(row, owner, deadline)
        finally:
            _release(name, owner)
        sent += result.sent
        # Entries committed while we held the lease had their nudges turned away.
        if result.outcome != "caught_up" or head_seq() <= result.cursor:
            break
        if time.monotonic() >= deadline:
            result = PumpResult("more", 0, result.cursor)
            break
    return PumpResult(result.outcome, sent, result.cursor, result.retry_in, result.error)


class Busy(Exception):
    """A sender holds the destination's lease right now."""


def move_cursor(name: str, *, to: int, details: dict[str, Any], now: datetime) -> int:
    """Set destination ``name``'s cursor to ``to`` under its lease; audited
    (``audit.stream_cursor_moved``). Returns the old cursor. Raises ``Busy``."""
    StreamDestination.objects.get_or_create(name=name)
    owner = uuid.uuid4().hex
    row = _claim(name, owner, now, force=True)
    if row is None:
        raise Busy(f"a sender is working on {name} right now; try again in a moment")
    try:
        with atomic():
            StreamDestination.objects.filter(pk=row.pk, lease_owner=owner).update(
                cursor=to, next_attempt_at=None
            )
            record(
                StreamAction.CURSOR_MOVED,
                details={"destination": name, "from": row.cursor, "to": to, **details},
            )
    finally:
        _release(name, owner)
    return row.cursor


def retry_now(name: str) -> int:
    """Clear a destination's backoff so the next run sends at once (the admin's "retry now")."""
    return StreamDestination.objects.filter(name=name).update(next_attempt_at=None)


def enqueue(name: str, *, countdown: float | None = None) -> bool:
    """Ask a worker to pump ``name``; False (logged) when the broker cannot take it."""
    from ..tasks import stream

    try:
        options: dict[str, Any] = {"retry": False}
        if countdown is not None:
            options["countdown"] = countdown
        stream.apply_async(kwargs={"destination": name}, **options)
    except Exception as exc:
        log.warning("audit stream %s: could not enqueue a run (%s); the tick retries", name, exc)
        return False
    return True


def nudge() -> None:
    """The audit writer's commit hook: ask for a run per destination, never wait for one.

    Skipped with ``CELERY_TASK_ALWAYS_EAGER`` (debugging only), where enqueueing would send
    to the SIEM inside the request that committed; the beat tick sends instead.
    """
    if not config.enabled() or settings.CELERY_TASK_ALWAYS_EAGER:
        return
    for destination in config.destinations():
        if not enqueue(destination.name):
            return


def due_names(now: datetime | None = None) -> list[str]:
    """Configured destinations the beat tick should run: behind and not backing off."""
    now = now or timezone.now()
    head = head_seq()
    names = []
    for name, row in destination_rows().items():
        waiting = row.next_attempt_at is not None and row.next_attempt_at > now + CLOCK_GRACE
        leased = row.leased_until is not None and row.leased_until > now
        if row.cursor < head and not waiting and not leased:
            names.append(name)
    return names
