"""Append-only in fact: the model refuses, and on PostgreSQL so does the database."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import DatabaseError, connection, connections, transaction

from apps.audit import chain, export
from apps.audit.models import AppendOnlyError, AuditEvent

from .conftest import T0, add_entries, add_entry


@pytest.mark.django_db
class TestModelRefuses:
    def test_save_of_an_existing_entry(self) -> None:
        event = add_entry(at=T0, actor_label="original@example.com")
        event.actor_label = "changed@example.com"
        with pytest.raises(AppendOnlyError):
            event.save()
        assert AuditEvent.objects.get(pk=event.pk).actor_label == "original@example.com"

    def test_delete_of_an_entry(self) -> None:
        event = add_entry(at=T0)
        with pytest.raises(AppendOnlyError):
            event.delete()
        assert AuditEvent.objects.filter(pk=event.pk).exists()

    def test_queryset_update_and_delete(self) -> None:
        add_entries(2, at=T0)
        with pytest.raises(AppendOnlyError):
            AuditEvent.objects.filter(seq=1).update(actor_label="x")
        with pytest.raises(AppendOnlyError):
            AuditEvent.objects.all().delete()
        assert sorted(AuditEvent.objects.values_list("actor_label", flat=True)) == [
            "user0@example.com",
            "user1@example.com",
        ]


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_auditevent SET actor_label = 'mallory@example.com' WHERE seq = 1",
        "DELETE FROM audit_auditevent WHERE seq = 1",
    ],
)
def test_postgresql_refuses_raw_update_and_delete(sql: str) -> None:
    event = add_entry(at=T0)
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)
    assert AuditEvent.objects.get(seq=1).actor_label == event.actor_label


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_get_a_contiguous_chain() -> None:
    """8 threads x 25 entries, each in its own transaction on its own connection."""
    threads, per_thread = 8, 25
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            start.wait()
            for i in range(per_thread):
                add_entry(actor_label=f"writer{n}@example.com", details={"i": i})
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    seqs = list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, threads * per_thread + 1))
    result = chain.verify(export.entries(AuditEvent.objects.all()))
    assert (result.ok, result.count) == (True, threads * per_thread)
    labels: Any = AuditEvent.objects.values_list("actor_label", flat=True)
    assert {label: list(labels).count(label) for label in set(labels)} == {
        f"writer{n}@example.com": per_thread for n in range(threads)
    }
