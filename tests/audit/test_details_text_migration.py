"""Migration audit.0005 fills in details_text for entries written before it existed."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from apps.audit import chain
from apps.audit.models import AuditEvent

from .conftest import T0

BEFORE = [("audit", "0004_zero_contract_actions")]


def _migrate(target: list[tuple[str, str]] | None) -> None:
    """Migrate the audit app to ``target``; None: to its latest migration, so the tests
    after this one (and the worker processes some start) find every table again."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(target or executor.loader.graph.leaf_nodes("audit"))


@pytest.mark.django_db(transaction=True)
def test_old_entries_get_their_canonical_text_and_stay_append_only() -> None:
    _migrate(BEFORE)
    prev = chain.GENESIS
    try:
        with connection.cursor() as cursor:
            for seq, details in enumerate(
                [{"b": [1, "é"], "a": {"z": 1, "y": None}}, {}, {"x": "=1", "n": 0.5}], start=1
            ):
                fields: dict[str, Any] = {
                    **dict.fromkeys(chain.CHAINED_FIELDS, ""),
                    # Empty optional fields are left out of the hash, but the column is NOT NULL.
                    **dict.fromkeys(chain.OPTIONAL_CHAINED_FIELDS, ""),
                    "seq": seq,
                    "created_at": T0,
                    "actor_id": None,
                    "actor_label": "system",
                    "action": "grant.revoked",
                    "ip": None,
                    "details": details,
                    "prev_hash": prev,
                }
                fields["hash"] = prev = chain.entry_hash(fields)
                values = [json.dumps(v) if k == "details" else v for k, v in fields.items()]
                columns = ", ".join(fields)
                marks = ", ".join(["%s"] * len(fields))
                cursor.execute(f"INSERT INTO audit_auditevent ({columns}) VALUES ({marks})", values)  # noqa: S608
    finally:
        _migrate(None)  # 0005 (the one under test) and every later one
    rows = list(AuditEvent.objects.order_by("seq").values_list("details_text", flat=True))
    assert rows == ['{"a":{"y":null,"z":1},"b":[1,"é"]}', "{}", '{"n":0.5,"x":"=1"}']
    result = chain.verify(AuditEvent.objects.order_by("seq").values())
    assert (result.ok, result.count) == (True, 3)
    if connection.vendor == "postgresql":  # the trigger is back on
        with pytest.raises(Exception, match="append-only"), connection.cursor() as cursor:
            cursor.execute("UPDATE audit_auditevent SET details_text = '' WHERE seq = 1")
