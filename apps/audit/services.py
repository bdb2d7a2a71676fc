"""Writing to the audit trail.

``record`` is the one way an entry is written. It must run inside the caller's
transaction (it refuses otherwise), so the entry commits or rolls back with the state
change it describes. It takes the chain head lock, so entries are chained in commit
order even with concurrent writers; take every domain row lock *before* the first
``record`` call of a transaction, never after, to keep lock order one-way.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from django.utils import timezone

from . import chain, context
from .models import AuditAction, AuditEvent

SYSTEM = "system"

# Keys whose values never enter the trail, at any depth.
_SECRET_KEY = re.compile(
    r"(token|secret|password|passwd|assertion|authorization|cookie|api_key|webhook)", re.I
)
MASK = "***"

# Any constant identifies our lock among other advisory locks; this one spells "audit".
_CHAIN_LOCK_ID = 0x61756469

# Entries of requests and grants say which channel the change came through (web or api);
# tasks and commands run without one, so their entries carry none.
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


def _lock_chain_head() -> AuditEvent | None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_ID])
    # SQLite runs transactions as BEGIN IMMEDIATE (settings), which already serialises writers.
    return AuditEvent.objects.order_by("-seq").only("seq", "hash").first()


def describe(target: models.Model | None) -> tuple[str, str, str]:
    if target is None:
        return "", "", ""
    return target._meta.label_lower, str(target.pk), str(target)[:300]


def record(
    action: AuditAction | str,
    *,
    actor: Any = None,
    target: models.Model | None = None,
    resource_slug: str = "",
    details: dict[str, Any] | None = None,
    actor_label: str | None = None,
) -> AuditEvent:
    """Append one entry; ``actor`` None means the system (a task, a command, the proxy)."""
    if not connection.in_atomic_block:
        raise RuntimeError("audit.record must run inside the transaction of its state change")
    ctx = context.current()
    head = _lock_chain_head()
    target_type, target_id, target_repr = describe(target)
    actor_id = getattr(actor, "pk", None)
    label = actor_label or (getattr(actor, "email", "") or getattr(actor, "username", "")) or SYSTEM
    details = dict(details or {})
    if ctx.channel and str(action).startswith(_CHANNEL_PREFIXES):
        details.setdefault("channel", ctx.channel)
    fields: dict[str, Any] = {
        "seq": (head.seq if head else 0) + 1,
        "created_at": timezone.now(),
        "actor_id": actor_id,
        "actor_label": label[:254],
        "action": str(action),
        "target_type": target_type,
        "target_id": target_id,
        "target_repr": target_repr,
        "resource_slug": resource_slug,
        "request_id": ctx.request_id,
        "upstream_request_id": ctx.upstream_request_id,
        "ip": ctx.ip,
        "user_agent": ctx.user_agent,
        "assertion_jti": ctx.assertion_jti,
        "assertion_sid": ctx.assertion_sid,
        "details": _normalise(details),
        "prev_hash": head.hash if head else chain.GENESIS,
    }
    fields["hash"] = chain.entry_hash(fields)
    event = AuditEvent(**fields, details_text=chain.dumps(fields["details"]))
    event.save()
    return event


def record_now(action: AuditAction | str, **kwargs: Any) -> AuditEvent:
    """Record in a transaction of its own (for events with no state change, e.g. a rejection)."""
    with transaction.atomic():
        return record(action, **kwargs)


def event_fields(event: AuditEvent) -> dict[str, Any]:
    """The chained fields of a stored entry, plus its hash (for verification and export)."""
    names = (*chain.CHAINED_FIELDS, *chain.OPTIONAL_CHAINED_FIELDS)
    data = {name: getattr(event, name) for name in names}
    data["hash"] = event.hash
    return data
