"""The audit stream against real receivers (devtools.siem): an HTTP(S) endpoint and a syslog
listener that parses RFC 6587 octet counting, over TCP and TLS with a test CA.

The sender runs in this process (``sender.pump``, what the Celery task calls); nothing of it
is replaced. tests/audit/test_stream_live.py runs it through a real worker.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from apps.audit import chain
from apps.audit.models import AuditEvent, StreamDestination
from apps.audit.stream import sender, signals
from apps.audit.stream.actions import StreamAction
from devtools.siem import HttpReceiver, SyslogReceiver
from tests.audit.conftest import add_entries
from tests.audit.stream_support import export_lines, verify_file

pytestmark = pytest.mark.django_db


def row(receiver: Any) -> StreamDestination:
    return StreamDestination.objects.get(name=receiver.url.split("?")[0])


def pump(receiver: Any, **kwargs: Any) -> sender.PumpResult:
    return sender.pump(row_name(receiver), **kwargs)


def row_name(receiver: Any) -> str:
    return receiver.url


@pytest.fixture
def alerts() -> Any:
    seen: list[dict[str, Any]] = []

    def listen(sender: Any, **kwargs: Any) -> None:
        seen.append(kwargs)

    signals.stream_alert.connect(listen)
    yield seen
    signals.stream_alert.disconnect(listen)


# --- what arrives --------------------------------------------------------------------------


@pytest.mark.parametrize("receiver_name", ["http_receiver", "https_receiver"])
def test_https_copy_is_the_export_line_for_line_and_verifies(
    request: Any, receiver_name: str, stream_to: Any, tmp_path: Path
) -> None:
    receiver: HttpReceiver = request.getfixturevalue(receiver_name)
    stream_to(receiver, batch=7)
    add_entries(20, details={"note": "Zoë 🚀 \u2028 line\nbreak", "nested": {"b": 1, "a": [2]}})

    first = pump(receiver)

    assert first.outcome == "caught_up" and first.sent == 20
    assert [n for _, n in receiver.batches] == [7, 7, 6]
    exported = export_lines(tmp_path)  # audits itself: one entry more
    assert pump(receiver).sent == 1
    assert receiver.unique_lines() == exported
    assert receiver.seqs() == list(range(1, 22))  # in order, no repeat
    assert row(receiver).cursor == 21
    assert "intact: 21 entries" in verify_file(receiver.write_jsonl(tmp_path / "siem.jsonl"))
    assert receiver.errors == []


@pytest.mark.parametrize("receiver_name", ["syslog_receiver", "tls_syslog_receiver"])
def test_syslog_messages_carry_the_export_lines(
    request: Any, receiver_name: str, stream_to: Any, tmp_path: Path
) -> None:
    receiver: SyslogReceiver = request.getfixturevalue(receiver_name)
    stream_to(receiver, batch=4)
    add_entries(9, details={"text": "Zoë 🚀"})

    assert pump(receiver).sent == 9

    exported = export_lines(tmp_path)
    assert pump(receiver).sent == 1
    assert receiver.unique_lines() == exported
    assert receiver.errors == []
    entries = list(AuditEvent.objects.order_by("seq"))
    for message, entry in zip(receiver.messages, entries, strict=True):
        assert message.pri == 110 and (message.facility, message.severity) == (13, 6)
        assert message.app_name == "jitportal" and message.procid == "-"
        assert message.msgid == entry.action
        assert message.hostname == "jit.example.com"
        assert message.timestamp == chain.format_time(entry.created_at)
        assert message.structured_data == "-"
    assert receiver.connections == 4  # one connection per batch: 4 + 4 + 1, then 1
    assert "intact: 10 entries" in verify_file(receiver.write_jsonl(tmp_path / "siem.jsonl"))


def test_both_kinds_at_once_each_with_its_own_cursor(
    http_receiver: HttpReceiver, syslog_receiver: SyslogReceiver, stream_to: Any
) -> None:
    stream_to(http_receiver, syslog_receiver)
    add_entries(5)
    syslog_receiver.down()

    assert pump(http_receiver).outcome == "caught_up"
    assert pump(syslog_receiver).outcome == "failed"

    assert row(http_receiver).cursor == 5 and row(syslog_receiver).cursor == 0
    assert http_receiver.seqs() == [1, 2, 3, 4, 5] and syslog_receiver.seqs() == []


# --- outages and repeats -------------------------------------------------------------------


def test_an_outage_mid_stream_loses_nothing_and_keeps_the_order(
    http_receiver: HttpReceiver, stream_to: Any, tmp_path: Path
) -> None:
    stream_to(http_receiver, batch=5)
    add_entries(12)
    assert pump(http_receiver).sent == 12
    http_receiver.down()
    add_entries(8)

    failed = pump(http_receiver)

    assert failed.outcome == "failed" and failed.retry_in == 1.0
    state = row(http_receiver)
    assert state.cursor == 12 and state.failures == 1 and not state.refused
    assert "Connection refused" in state.last_error
    assert pump(http_receiver).outcome == "waiting"  # backing off: not claimed
    add_entries(3)
    http_receiver.up()

    assert pump(http_receiver, force=True).sent == 11

    assert http_receiver.seqs() == list(range(1, 24))
    state = row(http_receiver)
    assert state.cursor == 23 and state.failures == 0 and state.next_attempt_at is None
    assert "intact: 23" in verify_file(http_receiver.write_jsonl(tmp_path / "copy.jsonl"))


def test_a_repeat_after_a_lost_acknowledgement_is_an_exact_repeat(
    http_receiver: HttpReceiver, stream_to: Any
) -> None:
    stream_to(http_receiver, batch=3)
    add_entries(7, details={"x": "é"})
    http_receiver.drop_answers = 2  # the 2nd and 3rd batch arrive, their answers are lost
    assert pump(http_receiver).sent == 0
    http_receiver.drop_answers = 0

    assert pump(http_receiver, force=True).sent == 7

    # 1-3 lost its answer and came again, byte for byte, then everything in order.
    assert http_receiver.seqs() == [1, 2, 3, 1, 2, 3, 4, 5, 6, 7]
    assert http_receiver.received[:3] == http_receiver.received[3:6]
    assert len(http_receiver.unique_lines()) == 7 and http_receiver.errors == []


def test_syslog_receiver_that_dies_with_unread_data_gets_the_batch_again(
    syslog_receiver: SyslogReceiver, stream_to: Any
) -> None:
    stream_to(syslog_receiver, batch=50)
    add_entries(30)
    syslog_receiver.stall.set()  # accepts, reads nothing

    import threading

    crash = threading.Timer(0.5, syslog_receiver.down)
    crash.start()
    failed = pump(syslog_receiver)
    crash.join()

    assert failed.outcome == "failed"
    assert row(syslog_receiver).cursor == 0
    syslog_receiver.stall.clear()
    syslog_receiver.up()
    assert pump(syslog_receiver, force=True).sent == 30
    assert syslog_receiver.seqs()[-30:] == list(range(1, 31))


def test_backoff_doubles_to_the_cap(
    http_receiver: HttpReceiver, stream_to: Any, settings: Any
) -> None:
    stream_to(http_receiver)
    settings.AUDIT_STREAM_RETRY_MAX_SECONDS = 5.0
    add_entries(1)
    http_receiver.down()

    waits = [pump(http_receiver, force=True).retry_in for _ in range(5)]

    assert waits == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert row(http_receiver).failures == 5


# --- refusals -----------------------------------------------------------------------------


def test_a_bad_token_is_a_refusal_shown_kept_retried_and_alerted_once(
    http_receiver: HttpReceiver,
    stream_to: Any,
    settings: Any,
    alerts: list[dict[str, Any]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    stream_to(http_receiver)
    settings.AUDIT_STREAM_TOKEN = "wrong-token-value"
    settings.CELERY_TASK_ALWAYS_EAGER = True  # no worker here: the commit hook enqueues nothing
    add_entries(4)

    with django_capture_on_commit_callbacks(execute=True):
        refused = pump(http_receiver)
    with django_capture_on_commit_callbacks(execute=True):
        again = pump(http_receiver, force=True)

    assert refused.outcome == again.outcome == "failed"
    assert refused.retry_in == again.retry_in == 60.0  # a refusal waits the cap
    state = row(http_receiver)
    assert state.refused and state.cursor == 0 and state.alerted_at is not None
    assert "answered 401" in state.last_error and "AUDIT_STREAM_TOKEN" in state.last_error
    assert "wrong-token-value" not in state.last_error
    assert len(alerts) == 1 and alerts[0]["refused"] is True
    refusals = AuditEvent.objects.filter(action=StreamAction.REFUSED)
    assert refusals.count() == 1
    assert refusals.get().details["destination"] == http_receiver.url

    settings.AUDIT_STREAM_TOKEN = "siem-test-token"
    done = pump(http_receiver, force=True)

    # The backlog was kept: everything arrives, the entries about the refusal included.
    assert done.outcome == "caught_up" and row(http_receiver).cursor == sender.head_seq()
    assert AuditEvent.objects.filter(action=StreamAction.RECOVERED).count() == 1
    state = row(http_receiver)
    assert not state.refused and state.alerted_at is None and state.failures == 0
    assert http_receiver.seqs() == list(range(1, sender.head_seq() + 1))


def test_an_untrusted_certificate_is_a_refusal(
    tls_syslog_receiver: SyslogReceiver, stream_to: Any, settings: Any, tmp_path: Path
) -> None:
    from tests.support.tls import make_ca

    stream_to(tls_syslog_receiver)
    settings.AUDIT_STREAM_CA_FILE = str(make_ca(tmp_path / "other").ca_file)
    add_entries(1)

    result = pump(tls_syslog_receiver)

    assert result.outcome == "failed" and row(tls_syslog_receiver).refused
    assert "certificate" in row(tls_syslog_receiver).last_error


def test_a_batch_too_large_is_halved_down_to_one_entry(
    http_receiver: HttpReceiver, stream_to: Any
) -> None:
    stream_to(http_receiver, batch=16)
    add_entries(16, details={"pad": "x" * 300})
    http_receiver.max_body = 2500  # about 4 entries a batch

    assert pump(http_receiver).sent == 16

    assert all(n <= 4 for _, n in http_receiver.batches)
    assert http_receiver.seqs() == list(range(1, 17))
    http_receiver.max_body = 100  # not even one entry fits
    add_entries(1)
    result = pump(http_receiver)
    assert result.outcome == "failed" and "answered 413" in result.error
    assert row(http_receiver).refused


def test_one_sender_per_destination(http_receiver: HttpReceiver, stream_to: Any) -> None:
    stream_to(http_receiver)
    add_entries(2)
    sender.destination_rows()
    StreamDestination.objects.filter(name=http_receiver.url).update(
        leased_until=timezone.now() + timedelta(minutes=1), lease_owner="someone-else"
    )

    assert pump(http_receiver).outcome == "busy"
    assert http_receiver.requests == 0
    StreamDestination.objects.filter(name=http_receiver.url).update(
        leased_until=timezone.now() - timedelta(seconds=1)
    )
    assert pump(http_receiver).sent == 2  # a lease that ran out is taken over


def test_a_destination_no_longer_configured_is_not_sent_to(
    http_receiver: HttpReceiver, stream_to: Any, settings: Any
) -> None:
    stream_to(http_receiver)
    add_entries(1)
    settings.AUDIT_STREAM = []

    assert sender.pump(http_receiver.url).outcome == "not_configured"
    assert http_receiver.requests == 0


def test_due_names_lists_destinations_behind_and_not_backing_off(
    http_receiver: HttpReceiver, syslog_receiver: SyslogReceiver, stream_to: Any
) -> None:
    stream_to(http_receiver, syslog_receiver)
    assert sender.due_names() == []
    add_entries(2)
    assert sorted(sender.due_names()) == sorted([http_receiver.url, syslog_receiver.url])
    pump(http_receiver)
    syslog_receiver.down()
    pump(syslog_receiver)  # fails: backing off now

    assert sender.due_names() == []


def test_lines_are_json_objects_with_every_export_column(
    http_receiver: HttpReceiver, stream_to: Any
) -> None:
    from apps.audit.export import EXPORT_COLUMNS

    stream_to(http_receiver)
    add_entries(1)
    pump(http_receiver)

    assert list(json.loads(http_receiver.received[0])) == list(EXPORT_COLUMNS)


def test_a_run_out_of_time_asks_for_another_and_loses_nothing(
    http_receiver: HttpReceiver, stream_to: Any
) -> None:
    stream_to(http_receiver, batch=2)
    add_entries(40)

    assert sender.pump(http_receiver.url, run_seconds=0).outcome == "more"
    assert sender.pump(http_receiver.url).outcome == "caught_up"

    assert http_receiver.unique_lines()[-1].startswith(b'{"seq":40,')
    assert sorted(set(http_receiver.seqs())) == list(range(1, 41))
