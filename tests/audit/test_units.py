"""Buffered chaining: an ``audit.atomic()`` unit chains its entries once, as it exits."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from apps.access import services as access
from apps.access.actions import AccessAction
from apps.access.models import AccessRequest
from apps.accounts.actions import AccountAction
from apps.audit import chain, export
from apps.audit import services as audit
from apps.audit.models import AuditAction, AuditEvent
from tests.factories import ResourceFactory, UserFactory

INSERT = 'INSERT INTO "audit_auditevent"'
HEAD_READ = 'FROM "audit_auditevent" ORDER BY'
LOCK = "pg_advisory_xact_lock"


def count(queries: CaptureQueriesContext, text: str) -> int:
    return sum(text in q["sql"] for q in queries.captured_queries)


def actions() -> list[str]:
    return list(AuditEvent.objects.in_chain_order().values_list("action", flat=True))


def intact() -> chain.VerifyResult:
    return chain.verify(export.entries(AuditEvent.objects.all()))


@pytest.mark.django_db
class TestUnit:
    def test_entries_are_chained_once_at_the_end(self) -> None:
        with CaptureQueriesContext(connection) as queries, audit.atomic():
            first = audit.record(AccessAction.GRANT_REVOKED, details={"n": 1})
            audit.record(AccessAction.GRANT_EXPIRED, details={"n": 2})
            audit.record(AccessAction.GRANT_EXTENDED, details={"n": 3})
            assert count(queries, INSERT) == 0  # buffered: no lock, no head read yet
            assert first.seq is None
        assert count(queries, INSERT) == 1  # one multi-row INSERT
        assert count(queries, HEAD_READ) == 1
        assert count(queries, LOCK) == (1 if connection.vendor == "postgresql" else 0)
        assert actions() == ["grant.revoked", "grant.expired", "grant.extended"]
        assert (first.seq, first.pk) == (1, AuditEvent.objects.get(seq=1).pk)
        assert (intact().ok, intact().count) == (True, 3)

    def test_created_at_never_decreases_along_seq(self) -> None:
        with audit.atomic():
            for n in range(5):
                audit.record(AccessAction.GRANT_REVOKED, details={"n": n})
        times = list(AuditEvent.objects.in_chain_order().values_list("created_at", flat=True))
        assert times == sorted(times)

    def test_a_failed_unit_leaves_no_entry_and_no_change(self) -> None:
        def fail() -> None:
            with audit.atomic():
                user = UserFactory(email="gone@example.com")
                audit.record(AccountAction.USER_CREATED, target=user)
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            fail()
        assert AuditEvent.objects.count() == 0
        assert not UserFactory._meta.model.objects.filter(email="gone@example.com").exists()

    def test_a_failed_inner_unit_drops_only_its_own_entries(self) -> None:
        with audit.atomic():
            audit.record(AccessAction.GRANT_REVOKED, details={"kept": 1})
            try:
                with audit.atomic():
                    audit.record(AccessAction.GRANT_EXPIRED, details={"dropped": 1})
                    raise RuntimeError("inner")
            except RuntimeError:
                pass
            with audit.atomic():
                audit.record(AccessAction.GRANT_EXTENDED, details={"kept": 2})
        assert actions() == ["grant.revoked", "grant.extended"]
        assert intact().ok

    def test_a_plain_savepoint_inside_a_unit_that_rolls_back_takes_its_entry(self) -> None:
        with audit.atomic():
            audit.record(AccessAction.GRANT_REVOKED, details={"kept": 1})
            try:
                with transaction.atomic():  # may roll back on its own: chained at once
                    audit.record(AccessAction.GRANT_EXPIRED, details={"dropped": 1})
                    with audit.atomic():  # separated from the outer unit by that savepoint
                        audit.record(AccessAction.GRANT_EXTENDED, details={"dropped": 2})
                    raise RuntimeError("savepoint")
            except RuntimeError:
                pass
        assert actions() == ["grant.revoked"]
        assert (intact().ok, intact().count) == (True, 1)

    def test_outside_a_unit_an_entry_is_chained_at_once(self) -> None:
        with transaction.atomic(), CaptureQueriesContext(connection) as queries:
            event = audit.record(AccessAction.GRANT_REVOKED)
            assert count(queries, INSERT) == 1
            assert event.seq == 1

    def test_record_now_chains_at_once_even_inside_a_unit(self) -> None:
        with audit.atomic():
            audit.record(AccessAction.GRANT_REVOKED)
            exported = audit.record_now(AuditAction.AUDIT_EXPORTED)
            assert exported.seq == 1  # the export reads its seq before the unit ends
        assert actions() == ["audit.exported", "grant.revoked"]
        assert intact().ok


@pytest.mark.django_db
def test_an_audited_service_call_inserts_into_the_trail_once() -> None:
    """An auto-approved submission writes three entries: one lock, one head read, one INSERT."""
    resource = ResourceFactory(auto_approve_rules=[{"group": "engineering", "max_minutes": 120}])
    alice = UserFactory(groups=["engineering"])
    with CaptureQueriesContext(connection) as queries:
        req = access.submit_request(
            requester=alice,
            resource=resource,
            duration_minutes=60,
            justification="Fixing INC-7 now",
        )
    assert req.state == "approved"
    assert actions() == [
        AccessAction.REQUEST_SUBMITTED,
        AccessAction.REQUEST_AUTO_APPROVED,
        AccessAction.GRANT_ACTIVATED,
    ]
    assert count(queries, INSERT) == 1
    assert count(queries, HEAD_READ) == 1
    assert count(queries, LOCK) == (1 if connection.vendor == "postgresql" else 0)
    # The chain lock is taken after every domain write of the transaction.
    sql = [q["sql"] for q in queries.captured_queries]
    head = next(i for i, s in enumerate(sql) if HEAD_READ in s)
    assert not any(s.startswith(("INSERT", "UPDATE")) for s in sql[head + 2 :])


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("standby_approver")  # somebody can approve the requests
def test_the_chain_lock_is_not_held_from_the_first_record() -> None:
    """A writer paused after its first record() does not stop another writer's commit."""
    resource = ResourceFactory()
    alice, bob = UserFactory(), UserFactory()
    recorded, other_done = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def paused() -> None:
        try:
            with audit.atomic():
                audit.record(AccessAction.GRANT_REVOKED, actor=alice)
                recorded.set()
                # Before buffering, this writer held the chain lock here until COMMIT.
                assert other_done.wait(20), "the other writer waited for our lock"
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    def other() -> None:
        try:
            recorded.wait(20)
            access.submit_request(
                requester=bob, resource=resource, duration_minutes=60, justification="In between"
            )
            other_done.set()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=paused), threading.Thread(target=other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert actions() == [AccessAction.REQUEST_SUBMITTED, AccessAction.GRANT_REVOKED]
    assert intact().ok


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_eight_concurrent_service_writers_get_a_contiguous_chain() -> None:
    """8 threads x 10 auto-approved submissions (3 entries each, chained per transaction)."""
    threads, per_thread = 8, 10
    resource = ResourceFactory(auto_approve_rules=[{"group": "engineering", "max_minutes": 120}])
    users = [[UserFactory(groups=["engineering"]) for _ in range(per_thread)] for _ in range(8)]
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def work(batch: list[Any]) -> None:
        try:
            start.wait()
            for user in batch:
                access.submit_request(
                    requester=user,
                    resource=resource,
                    duration_minutes=60,
                    justification="Load test INC-9",
                )
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=work, args=(batch,)) for batch in users]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    total = threads * per_thread
    assert AccessRequest.objects.count() == total
    seqs = list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, 3 * total + 1))
    result = intact()
    assert (result.ok, result.count) == (True, 3 * total)
    # Each transaction's three entries are adjacent: chained together, in their order.
    rows = list(AuditEvent.objects.in_chain_order().values_list("action", "target_id"))
    for i in range(0, len(rows), 3):
        assert [a for a, _ in rows[i : i + 3]] == [
            AccessAction.REQUEST_SUBMITTED,
            AccessAction.REQUEST_AUTO_APPROVED,
            AccessAction.GRANT_ACTIVATED,
        ]
