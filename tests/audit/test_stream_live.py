"""The acceptance scenario of the audit stream, end to end: the audit writer's commit hook ->
Redis -> a real Celery worker -> a real HTTPS receiver (test CA) and a real syslog listener.

Both receivers go down for 30 seconds while requests are filed and approved; afterwards
every entry of ``export_audit --format jsonl`` has arrived at both, in seq order, each equal
to its export line, and the HTTPS copy passes ``verify_audit --file``. Outcomes are polled
with a bound, never asserted on timing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from apps.access import services
from apps.access.models import AccessRequest, Grant
from apps.access.states import RequestState
from apps.audit.stream import sender
from devtools.siem import HttpReceiver, SyslogReceiver
from tests.audit.stream_support import TOKEN, export_lines, verify_file
from tests.conftest import redis_available, redis_url, require_service
from tests.factories import ResourceFactory, UserFactory
from tests.support.celery_worker import CeleryWorker, database_url, purge_broker
from tests.support.tls import LocalCA
from tests.zero.live import _point_celery_at, eventually

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

OUTAGE_SECONDS = 30.0


@pytest.fixture
def receivers(local_ca: LocalCA) -> Iterator[tuple[HttpReceiver, SyslogReceiver]]:
    with (
        HttpReceiver(token=TOKEN, tls=local_ca.server_context()) as https,
        SyslogReceiver() as syslog,
    ):
        yield https, syslog


@pytest.fixture
def stack(
    django_db_setup: Any,
    django_db_blocker: Any,
    settings: Any,
    local_ca: LocalCA,
    receivers: tuple[HttpReceiver, SyslogReceiver],
) -> Iterator[CeleryWorker]:
    """A worker streaming to ``receivers``; this process nudges it through Redis."""
    from jitportal.celery import app

    with django_db_blocker.unblock():
        vendor, settings_dict = connection.vendor, dict(connection.settings_dict)
    require_service("PostgreSQL", vendor == "postgresql", "the worker needs a shared database")
    broker = redis_url()
    require_service("Redis", redis_available(broker), f"no answer at {broker}")
    purge_broker(broker)
    stream = {
        "AUDIT_STREAM": ",".join(r.url for r in receivers),
        "AUDIT_STREAM_TOKEN": TOKEN,
        "AUDIT_STREAM_CA_FILE": str(local_ca.ca_file),
        "AUDIT_STREAM_RETRY_BASE_SECONDS": "0.5",
        "AUDIT_STREAM_RETRY_MAX_SECONDS": "2",
        "AUDIT_STREAM_BATCH": "50",
    }
    env = {
        "DEBUG": "true",
        "LOG_FORMAT": "text",
        "DATABASE_URL": database_url(settings_dict),
        "CELERY_BROKER_URL": broker,
        "ZERO_SYNC_ENABLED": "false",
        "PORTAL_URL": "https://jit.example.com",
        **stream,
    }
    settings.AUDIT_STREAM = [r.url for r in receivers]
    settings.AUDIT_STREAM_TOKEN = TOKEN
    settings.AUDIT_STREAM_CA_FILE = str(local_ca.ca_file)
    settings.CELERY_BROKER_URL = broker
    saved = app.conf.broker_url, app.conf.broker_transport_options
    _point_celery_at(app, broker, {})
    worker = CeleryWorker(env, pool="prefork", concurrency=2)
    try:
        yield worker.start()
    except BaseException:
        print(worker.log_tail())
        raise
    finally:
        worker.stop()
        worker.log_path.unlink(missing_ok=True)
        _point_celery_at(app, *saved)


def file_and_approve(resource: Any, boss: Any, n: int) -> AccessRequest:
    user = UserFactory(username=f"idp|live-{n}", email=f"live{n}@example.com")
    req = services.submit_request(
        requester=user, resource=resource, duration_minutes=60, justification="Live stream test"
    )
    services.approve_request(req, approver=boss)
    return req


def caught_up(*receivers: Any) -> bool:
    head = sender.head_seq()
    return all(r.seqs() and max(r.seqs()) >= head for r in receivers)


def first_arrivals(seqs: list[int]) -> list[int]:
    seen: set[int] = set()
    out = []
    for seq in seqs:
        if seq not in seen:
            seen.add(seq)
            out.append(seq)
    return out


def test_a_30_second_outage_of_both_receivers_loses_nothing(
    stack: CeleryWorker, receivers: tuple[HttpReceiver, SyslogReceiver], tmp_path: Path
) -> None:
    https, syslog = receivers
    resource = ResourceFactory(slug="grafana")
    boss = UserFactory(username="idp|boss", email="boss@example.com", groups=["approvers"])
    before = [file_and_approve(resource, boss, n) for n in range(3)]
    assert eventually(lambda: caught_up(https, syslog), timeout=60), stack.log_tail()

    https.down()
    syslog.down()
    during: list[AccessRequest] = []
    started = time.monotonic()
    while time.monotonic() - started < OUTAGE_SECONDS:
        during.append(file_and_approve(resource, boss, 100 + len(during)))
        time.sleep(0.5)
    https.up()
    syslog.up()

    # The requests filed during the outage committed as usual.
    approved = AccessRequest.objects.filter(pk__in=[r.pk for r in during])
    assert approved.filter(state=RequestState.APPROVED).count() == len(during) >= 20
    assert Grant.objects.filter(request__in=approved).count() == len(during)
    assert eventually(lambda: caught_up(https, syslog), timeout=90), stack.log_tail()
    exported = export_lines(tmp_path)  # its own entry is the last line
    assert eventually(lambda: caught_up(https, syslog), timeout=60), stack.log_tail()
    for receiver in (https, syslog):
        # Every entry, each equal to its export line, first arrivals in seq order.
        assert receiver.unique_lines() == exported
        assert first_arrivals(receiver.seqs()) == list(range(1, len(exported) + 1))
        assert receiver.errors == []
    assert "intact" in verify_file(https.write_jsonl(tmp_path / "https-copy.jsonl"))
    assert len(before) == 3
