"""The audit stream's Celery tasks and its enqueueing at their edges: a failed run schedules
its own retry after the backoff, a run out of time asks for another at once, a caught-up run
asks for nothing; the tick enqueues only destinations behind and due; a broker that cannot
take a run is logged, never raised into the request that committed an entry."""

from __future__ import annotations

import functools
import logging
from typing import Any

import pytest
from kombu.exceptions import OperationalError as BrokerDown

from apps.audit import tasks
from apps.audit.stream import sender
from devtools.siem import HttpReceiver, SyslogReceiver
from tests.audit.conftest import add_entries

pytestmark = pytest.mark.django_db


@pytest.fixture
def enqueued(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, float | None]]:
    """The runs the tasks ask for (destination, countdown), instead of the broker."""
    calls: list[tuple[str, float | None]] = []

    def record(name: str, *, countdown: float | None = None) -> bool:
        calls.append((name, countdown))
        return True

    monkeypatch.setattr(sender, "enqueue", record)
    return calls


def test_a_caught_up_run_asks_for_nothing(
    http_receiver: HttpReceiver, stream_to: Any, enqueued: list
) -> None:
    stream_to(http_receiver)
    add_entries(3)
    assert tasks.stream(http_receiver.url) == "caught_up"
    assert http_receiver.seqs() == [1, 2, 3]
    assert enqueued == []


def test_a_failed_run_schedules_its_retry_after_the_backoff(
    http_receiver: HttpReceiver, stream_to: Any, enqueued: list
) -> None:
    stream_to(http_receiver)
    add_entries(2)
    http_receiver.down()
    assert tasks.stream(http_receiver.url) == "failed"
    assert enqueued == [(http_receiver.url, 1.0)]  # AUDIT_STREAM_RETRY_BASE_SECONDS


def test_a_run_out_of_time_asks_for_another_at_once(
    http_receiver: HttpReceiver,
    stream_to: Any,
    enqueued: list,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream_to(http_receiver, batch=2)
    add_entries(10)
    monkeypatch.setattr(sender, "pump", functools.partial(sender.pump, run_seconds=0))
    assert tasks.stream(http_receiver.url) == "more"
    assert enqueued == [(http_receiver.url, None)]


def test_the_tick_enqueues_only_destinations_behind_and_due(
    http_receiver: HttpReceiver,
    syslog_receiver: SyslogReceiver,
    stream_to: Any,
    enqueued: list,
) -> None:
    stream_to(http_receiver, syslog_receiver)
    assert tasks.stream_tick() == {"enqueued": 0}
    add_entries(2)
    sender.pump(http_receiver.url)  # caught up: not due
    assert tasks.stream_tick() == {"enqueued": 1}
    assert enqueued == [(syslog_receiver.url, None)]


def test_a_broker_that_cannot_take_a_run_is_logged_and_nudging_stops(
    http_receiver: HttpReceiver,
    syslog_receiver: SyslogReceiver,
    stream_to: Any,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    stream_to(http_receiver, syslog_receiver)
    settings.CELERY_TASK_ALWAYS_EAGER = False
    attempts: list[dict[str, Any]] = []

    def broker_down(**kwargs: Any) -> None:
        attempts.append(kwargs)
        raise BrokerDown("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(tasks.stream, "apply_async", broker_down)

    with caplog.at_level(logging.WARNING, logger="apps.audit.stream.sender"):
        assert sender.enqueue(http_receiver.url, countdown=4.0) is False
        sender.nudge()

    assert attempts[0] == {
        "kwargs": {"destination": http_receiver.url},
        "retry": False,
        "countdown": 4.0,
    }
    assert len(attempts) == 2  # the nudge gave up after the first destination's refusal
    assert [r.getMessage() for r in caplog.records] == [
        f"audit stream {http_receiver.url}: could not enqueue a run (Error 111 connecting "
        "to 127.0.0.1:6379. Connection refused.); the tick retries"
    ] * 2
