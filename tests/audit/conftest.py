"""Helpers for the audit tests: entries at chosen times, and raw SQL that bypasses the
model (on PostgreSQL with the append-only trigger disabled for that one statement)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine
from django.db import connection, transaction

from apps.access.actions import AccessAction
from apps.audit import services
from apps.audit.models import AuditEvent

# The audit stream's receivers and settings (tests/audit/stream_support.py).
from tests.audit.stream_support import (  # noqa: F401
    http_receiver,
    https_receiver,
    local_ca,
    stream_to,
    syslog_receiver,
    tls_syslog_receiver,
)

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)

DISABLE = "ALTER TABLE audit_auditevent DISABLE TRIGGER audit_append_only"
ENABLE = "ALTER TABLE audit_auditevent ENABLE TRIGGER audit_append_only"


def add_entry(
    action: str = AccessAction.GRANT_REVOKED,
    *,
    at: datetime | None = None,
    **kwargs: Any,
) -> AuditEvent:
    """One entry through ``record`` (the real writer), created at ``at`` if given."""
    if at is None:
        with transaction.atomic():
            return services.record(action, **kwargs)
    with time_machine.travel(at, tick=False), transaction.atomic():
        return services.record(action, **kwargs)


def add_entries(count: int, **kwargs: Any) -> list[AuditEvent]:
    """``count`` entries by user0@, user1@, ... with details {"n": i} unless given."""
    return [
        add_entry(**{"details": {"n": i}, "actor_label": f"user{i}@example.com", **kwargs})
        for i in range(count)
    ]


@pytest.fixture
def raw_sql() -> Callable[..., None]:
    """Run SQL straight at the table, as an attacker with database access would."""

    def run(sql: str, params: Sequence[Any] = ()) -> None:
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(DISABLE)
            cursor.execute(sql, list(params))
            if connection.vendor == "postgresql":
                cursor.execute(ENABLE)

    return run
