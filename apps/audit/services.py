"""Writing to the audit trail.

``record`` is the one way an entry is written. It must run inside the caller's
transaction (it refuses otherwise), so the entry commits or rolls back with the state
change it describes.

Buffered chaining. Chaining an entry means taking the chain head under a lock (a
PostgreSQL advisory lock held until COMMIT; SQLite's BEGIN IMMEDIATE already serialises
writers), so ``seq`` follows commit order. Taking it at the first ``record`` would hold
that lock for the rest of the transaction and queue every audited writer behind it. So a
service opens a unit of work with ``audit.atomic()`` (a ``transaction.atomic`` block that
knows the trail): ``record`` inside it only buffers the entry, and when the block exits
without an error the whole buffer is chained at once, still inside the transaction: one
lock, one head read, one multi-row INSERT, then the block commits. The lock is held only
from that flush to COMMIT.

Why an explicit block: Django has no pre-commit hook (``on_commit`` runs after COMMIT,
too late to write anything that must commit with the change). The outermost
``audit.atomic()`` exits just before its COMMIT, which is the last moment the entries can
still join the transaction. Wrapping ``transaction.atomic`` keeps every guarantee of the
unbuffered writer:

* the entries are written in the same transaction as their state change: a rollback, an
  exception or a crash before COMMIT leaves neither, a COMMIT keeps both;
* nested ``audit.atomic()`` blocks are savepoints: an inner block that fails drops its own
  buffered entries with its changes; one that succeeds hands them to the enclosing block;
* an entry recorded outside any unit, or inside a plain ``transaction.atomic()`` savepoint
  nested in one (which may roll back on its own, unseen by the unit), is chained at once
  (lock, head read, INSERT on the spot); so is a unit's buffer when a plain savepoint separates it
  from its enclosing unit. Such entries are never lost or orphaned; they only take the lock
  earlier;
* ``created_at`` is stamped when the entry is chained (under the lock), so it never
  decreases along ``seq``.

Lock order stays one-way: every domain row lock is taken before the chain lock, which a
unit takes last. An entry chained at once (outside a unit) takes the lock at that
point: take every domain row lock *before* it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DEFAULT_DB_ALIAS, connection, connections, models, transaction
from django.utils import timezone

from . import actions, chain, context
from .models import AuditEvent

SYSTEM = "system"

# Keys whose values never enter the trail, at any depth.
_SECRET_KEY = re.compile(
    r"(token|secret|password|passwd|assertion|authorization|cookie|api_key|webhook)", re.I
)
MASK = "***"

# Any constant identifies our lock among other advisory locks; this one spells "audit".
_CHAIN_LOCK_ID = 0x61756469

# Entries of requests and grants say which channel the change came through (web, api or
# slack, with the channel's details); tasks and commands run without one, so their entries
# carry none.
_CHANNEL_PREFIXES = ("request.", "grant.")


def mask_secrets(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: (MASK if _SECRET_KEY.search(str(k)) else mask_secrets(v)) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [mask_secrets(v) for v in value]
    return value


def _normalise(details: dict[str, Any] | None) -> dict[str, Any]:
    # Round-trip through JSON so what we hash is exactly what the database returns.
    return json.loads(json.dumps(mask_secrets(details or {}), cls=DjangoJSONEncoder))


def _lock_chain_head(cursor: Any) -> tuple[int, str]:
    """Take the chain lock and read the head's ``seq`` and ``hash`` (0 and GENESIS if empty).

    Plain SQL on one cursor: this runs in every audited transaction, and the ORM's query
    building cost more than the two statements themselves. The head is read by a second
    statement, after the lock is granted, so READ COMMITTED gives it a snapshot that
    includes the previous holder's committed entries.
    """
    if connection.vendor == "postgresql":
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_ID])
    # SQLite runs transactions as BEGIN IMMEDIATE (settings), which already serialises writers.
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    cursor.execute(f"SELECT seq, hash FROM {table} ORDER BY seq DESC LIMIT 1")  # noqa: S608
    row = cursor.fetchone()
    return (int(row[0]), str(row[1])) if row else (0, chain.GENESIS)


def describe(target: models.Model | None) -> tuple[str, str, str]:
    if target is None:
        return "", "", ""
    return target._meta.label_lower, str(target.pk), str(target)[:300]


@dataclass
class _Unit:
    """One open ``audit.atomic()`` block: its atomic depth and the entries it buffers."""

    depth: int
    entries: list[AuditEvent] = field(default_factory=list)


def _open_units() -> list[_Unit]:
    """The open units of this connection, outermost first (a connection is one thread's)."""
    conn = connections[DEFAULT_DB_ALIAS]
    units: list[_Unit] | None = getattr(conn, "_audit_units", None)
    if units is None:
        units = []
        conn._audit_units = units  # type: ignore[attr-defined]
    return units


class atomic:
    """``transaction.atomic()`` whose audit entries are chained once, as the block exits.

    Use it wherever a service would use ``transaction.atomic()``; see the module docstring.
    """

    def __init__(self) -> None:
        self._atomic = transaction.atomic()

    def __enter__(self) -> atomic:
        self._atomic.__enter__()
        _open_units().append(_Unit(depth=len(connection.atomic_blocks)))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        units = _open_units()
        unit = units.pop()
        if exc_type is None:
            try:
                parent = units[-1] if units else None
                if parent is not None and parent.depth == unit.depth - 1:
                    parent.entries.extend(unit.entries)
                else:
                    _chain(unit.entries)
            except BaseException as error:
                # The flush failed: the transaction must not commit without its entries.
                self._atomic.__exit__(type(error), error, error.__traceback__)
                raise
        self._atomic.__exit__(exc_type, exc, tb)


def _chain(entries: list[AuditEvent]) -> None:
    """Chain ``entries`` after the head: one lock, one head read, one multi-row INSERT."""
    if not entries:
        return
    with connection.cursor() as cursor:
        seq, prev = _lock_chain_head(cursor)
        for event in entries:
            seq += 1
            event.seq = seq
            event.created_at = timezone.now()
            event.prev_hash = prev
            event.hash = chain.entry_hash({name: getattr(event, name) for name in _HASHED})
            prev = event.hash
        _insert(cursor, entries)
    if getattr(settings, "AUDIT_STREAM", None):
        # The stream's commit hook: after COMMIT, ask a worker to send the new entries.
        transaction.on_commit(_nudge_stream)


def _nudge_stream() -> None:
    from .stream.sender import nudge

    nudge()


def _insert(cursor: Any, entries: list[AuditEvent]) -> None:
    """One multi-row INSERT of chained entries, giving each its primary key.

    What ``bulk_create`` does, without its per-call query compilation: each value is
    prepared by its own field, exactly as the ORM prepares it.
    """
    fields = [f for f in AuditEvent._meta.concrete_fields if not f.primary_key]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(str(f.column)) for f in fields)
    pk_column = quote(str(AuditEvent._meta.pk.column))
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    params = [
        f.get_db_prep_save(getattr(e, f.attname), connection) for e in entries for f in fields
    ]
    cursor.execute(
        f"INSERT INTO {quote(AuditEvent._meta.db_table)} "  # noqa: S608 - names from the model
        f"({columns}) VALUES {', '.join([row] * len(entries))} RETURNING {pk_column}",
        params,
    )
    for event, (pk,) in zip(entries, cursor.fetchall(), strict=True):
        event.pk = pk
        event._state.adding = False
        event._state.db = connection.alias


_HASHED = (*chain.CHAINED_FIELDS, *chain.OPTIONAL_CHAINED_FIELDS)


def _entry(
    action: str,
    *,
    actor: Any,
    target: models.Model | None,
    resource_slug: str,
    details: dict[str, Any] | None,
    actor_label: str | None,
) -> AuditEvent:
    """An entry with its content and context, not yet chained (no seq, time or hashes)."""
    ctx = context.current()
    target_type, target_id, target_repr = describe(target)
    label = actor_label or (getattr(actor, "email", "") or getattr(actor, "username", "")) or SYSTEM
    details = dict(details or {})
    if ctx.channel and str(action).startswith(_CHANNEL_PREFIXES):
        details.setdefault("channel", ctx.channel)
        if ctx.channel_details:
            details.setdefault(ctx.channel, dict(ctx.channel_details))
    normalised = _normalise(details)
    return AuditEvent(
        actor_id=getattr(actor, "pk", None),
        actor_label=label[:254],
        action=str(action),
        target_type=target_type,
        target_id=target_id,
        target_repr=target_repr,
        resource_slug=resource_slug,
        request_id=ctx.request_id,
        upstream_request_id=ctx.upstream_request_id,
        ip=ctx.ip,
        user_agent=ctx.user_agent,
        assertion_jti=ctx.assertion_jti,
        assertion_sid=ctx.assertion_sid,
        details=normalised,
        details_text=chain.dumps(normalised),
    )


def record(
    action: str,
    *,
    actor: Any = None,
    target: models.Model | None = None,
    resource_slug: str = "",
    details: dict[str, Any] | None = None,
    actor_label: str | None = None,
) -> AuditEvent:
    """Append one entry; ``actor`` None means the system (a task, a command, the proxy).

    Inside an ``audit.atomic()`` block the entry is buffered and the returned object gets
    its ``seq``, time and hashes when the block chains it; otherwise it is chained at once.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("audit.record must run inside the transaction of its state change")
    if not actions.is_registered(str(action)):
        raise actions.UnknownAction(f"no app registered the audit action {str(action)!r}")
    event = _entry(
        action,
        actor=actor,
        target=target,
        resource_slug=resource_slug,
        details=details,
        actor_label=actor_label,
    )
    units = _open_units()
    if units and units[-1].depth == len(connection.atomic_blocks):
        units[-1].entries.append(event)
    else:
        _chain([event])
    return event


def record_now(action: str, **kwargs: Any) -> AuditEvent:
    """Record and chain at once, in a transaction of its own when none is open (for events
    with no state change, e.g. a rejection or an export, whose entry must exist before the
    caller goes on: the export reads its ``seq``)."""
    with transaction.atomic():
        return record(action, **kwargs)


def event_fields(event: AuditEvent) -> dict[str, Any]:
    """The chained fields of a stored entry, plus its hash (for verification and export)."""
    data = {name: getattr(event, name) for name in _HASHED}
    data["hash"] = event.hash
    return data
