"""A hung mail server must not delay a revocation: the Zero sync and the notices run on
separate queues, each with its own worker (as docker-compose runs them).

Real parts: two Celery worker processes on Redis, the Zero simulator over HTTP, and an
SMTP "server" on loopback that accepts connections and never says a word.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from apps.access import services
from apps.access.models import Grant
from apps.access.states import SyncStatus
from apps.notifications.models import Notification, Status
from devtools.zerosim.simulator import ZeroSimulator
from tests.factories import ResourceFactory, UserFactory
from tests.support.celery_worker import CeleryWorker
from tests.zero.live import approver, eventually

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


class SilentSMTP:
    """Accepts TCP connections on loopback and never answers (a hung mail server)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.held: list[socket.socket] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            self.held.append(conn)  # keep it open, say nothing

    def close(self) -> None:
        self.stopped.set()
        for conn in self.held:
            conn.close()
        self.sock.close()


@pytest.fixture
def silent_smtp() -> Iterator[SilentSMTP]:
    server = SilentSMTP()
    yield server
    server.close()


@pytest.fixture
def worker(worker_env: dict[str, str], silent_smtp: SilentSMTP) -> Iterator[CeleryWorker]:
    """The compose layout: one worker for zero+default, one for notifications."""
    env = {
        **worker_env,
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(silent_smtp.port),
        "EMAIL_TIMEOUT": "120",  # hung for longer than this test waits
    }
    syncer = CeleryWorker(env, concurrency=1, queues=("zero", "default"))
    notifier = CeleryWorker(env, concurrency=1, queues=("notifications",))
    try:
        notifier.start()
        yield syncer.start()
    finally:
        for process in (syncer, notifier):
            process.stop()
            process.log_path.unlink(missing_ok=True)


def test_a_hung_mail_server_does_not_delay_a_revocation(
    live: ZeroSimulator, silent_smtp: SilentSMTP
) -> None:
    resource = ResourceFactory(slug="grafana")
    boss = approver()
    user = UserFactory(username="idp|alice", email="alice@example.com")
    req = services.submit_request(
        requester=user,
        resource=resource,
        duration_minutes=60,
        justification="Debugging the checkout outage",
    )
    grant = services.approve_request(req, approver=boss)
    assert grant is not None
    assert eventually(lambda: Grant.objects.get(pk=grant.pk).sync_status == SyncStatus.LIVE)
    # The "approved" notice is being sent: the notifier is now stuck on the silent server.
    assert eventually(lambda: silent_smtp.accepted >= 1), "no mail was attempted"

    services.revoke_grant(grant, actor=boss, reason="incident over")

    assert eventually(lambda: Grant.objects.get(pk=grant.pk).sync_status == SyncStatus.REMOVED)
    assert not live.evaluate("jit-grafana", "alice@example.com")
    # ... while the notice is still stuck: nothing was sent.
    assert not Notification.objects.filter(status=Status.SENT).exists()
