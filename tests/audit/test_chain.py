"""The chain: intact chains verify; altered, removed and inserted rows are found.

Tampering uses raw SQL (on PostgreSQL with the append-only trigger disabled), so these
run on both backends: SQLite locally, PostgreSQL with DATABASE_URL.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

import pytest

from apps.audit import chain, context, export
from apps.audit.models import AuditEvent

from .conftest import T0, add_entries

pytestmark = pytest.mark.django_db


def db_chain() -> chain.VerifyResult:
    return chain.verify(export.entries(AuditEvent.objects.all()))


def test_intact_chain_verifies_with_count_and_head() -> None:
    events = add_entries(5, at=T0)
    result = db_chain()
    assert result == chain.VerifyResult(count=5, ok=True, head=events[-1].hash)
    assert events[0].prev_hash == chain.GENESIS
    assert [e.prev_hash for e in events[1:]] == [e.hash for e in events[:-1]]


def test_hash_is_sha256_of_the_documented_canonical_json() -> None:
    """The README recipe, written independently of chain.canonical."""
    (event,) = add_entries(1, at=T0, details={"note": "Zoë 🚀", "b": 1})
    data = {name: getattr(event, name) for name in chain.CHAINED_FIELDS}
    data["created_at"] = "2026-11-01T09:00:00.000000+00:00"
    data["actor_id"] = None
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert hashlib.sha256(text.encode()).hexdigest() == event.hash


def test_an_upstream_request_id_is_hashed_as_the_readme_says() -> None:
    """Not empty, it is one more key of the canonical JSON; the README script keeps it."""
    token = context.activate(
        context.AuditContext(request_id="a" * 32, upstream_request_id="envoy-1234")
    )
    try:
        (event,) = add_entries(1, at=T0)
    finally:
        context.deactivate(token)
    line = export.export_values(_row(event))
    assert line["upstream_request_id"] == "envoy-1234"
    data = {k: v for k, v in line.items() if k != "hash"}
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert hashlib.sha256(text.encode()).hexdigest() == event.hash
    assert db_chain().ok


def test_altered_row_is_found(raw_sql: Any) -> None:
    add_entries(5, at=T0)
    raw_sql("UPDATE audit_auditevent SET target_repr = %s WHERE seq = 3", ["rewritten"])
    result = db_chain()
    assert (result.ok, result.broken_seq, result.count) == (False, 3, 2)
    assert result.problem == "altered (its hash does not match its content)"


def test_altered_and_rehashed_row_is_found_by_its_successor(raw_sql: Any) -> None:
    events = add_entries(5, at=T0)
    forged = {**export.export_values(_row(events[2])), "actor_label": "mallory@example.com"}
    raw_sql(
        "UPDATE audit_auditevent SET actor_label = %s, hash = %s WHERE seq = 3",
        ["mallory@example.com", chain.entry_hash(forged)],
    )
    result = db_chain()
    assert (result.ok, result.broken_seq) == (False, 4)
    assert result.problem.startswith("does not follow entry #3 (prev_hash differs")


def test_stored_details_text_that_differs_is_found(raw_sql: Any) -> None:
    """Exports stream the stored text; editing it alone must not pass unnoticed."""
    add_entries(5, at=T0)
    raw_sql("UPDATE audit_auditevent SET details_text = %s WHERE seq = 4", ['{"n":99}'])
    result = db_chain()
    assert (result.ok, result.broken_seq, result.count) == (False, 4, 3)
    assert result.problem == "altered (its stored details text differs from its details)"
    rows = chain.verify_rows(export.entries(AuditEvent.objects.all()))
    assert (rows.ok, rows.broken_seq, rows.count) == (False, 4, 3)


def test_deleted_row_is_found(raw_sql: Any) -> None:
    add_entries(5, at=T0)
    raw_sql("DELETE FROM audit_auditevent WHERE seq = 3")
    result = db_chain()
    assert (result.ok, result.broken_seq, result.count) == (False, 3, 2)
    assert result.problem == "missing (the next entry present is #4)"


def test_row_inserted_in_the_middle_is_found(raw_sql: Any) -> None:
    """A careful forger renumbers the tail and inserts a row whose own hash is right and
    whose prev_hash points at its predecessor; the old #3 (now #4) no longer follows it."""
    events = add_entries(5, at=T0)
    raw_sql("UPDATE audit_auditevent SET seq = -seq WHERE seq >= 3")
    raw_sql("UPDATE audit_auditevent SET seq = -seq + 1 WHERE seq < 0")
    fields: dict[str, Any] = {
        **export.export_values(_row(events[1])),
        "seq": 3,
        "created_at": T0 + timedelta(seconds=1),
        "actor_id": None,
        "actor_label": "mallory@example.com",
        "details": {"forged": True},
        "prev_hash": events[1].hash,
    }
    fields["hash"] = chain.entry_hash(fields)
    fields["details_text"] = chain.dumps(fields["details"])  # careful: what exports stream
    AuditEvent.objects.create(**fields)  # an INSERT: neither the model nor the trigger stop it
    result = db_chain()
    assert (result.ok, result.broken_seq, result.count) == (False, 4, 3)
    assert result.problem.startswith("does not follow entry #3")


def test_duplicate_seq_in_a_file_is_found() -> None:
    events = add_entries(3, at=T0)
    rows = [export.export_values(_row(e)) for e in events]
    result = chain.verify([rows[0], rows[1], rows[1], rows[2]])
    assert (result.ok, result.broken_seq) == (False, 2)
    assert result.problem == "duplicate or out of order (expected #3)"


def test_segment_anchored_at_its_first_row() -> None:
    events = add_entries(5, at=T0)
    rows = [export.export_values(_row(e)) for e in events[2:]]
    assert not chain.verify(rows).ok  # not from genesis
    result = chain.verify(rows, first_seq=3, first_prev=events[1].hash)
    assert (result.ok, result.count, result.head) == (True, 3, events[-1].hash)


def _row(event: AuditEvent) -> dict[str, Any]:
    return {name: getattr(event, name) for name in export.EXPORT_COLUMNS}
