"""Fixtures for notifications: eager Celery, the locmem outbox, people, a Slack that answers."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from apps.access.models import Resource
from apps.accounts.models import User
from tests.factories import ResourceFactory, UserFactory


@pytest.fixture(autouse=True)
def _tasks_run_eagerly(eager_celery: None) -> None:
    """Tasks run in-process when enqueued (``eager_celery``, ``tests/conftest.py``). A task's
    failure does not reach the code that enqueued it; tests assert on the rows and the outbox."""


@pytest.fixture(autouse=True)
def portal_url(settings: Any) -> None:
    settings.PORTAL_URL = "https://jit.example.com"
    settings.EXPIRY_REMINDER_MINUTES = 15
    settings.REQUEST_PENDING_TTL_HOURS = 24
    settings.DEFAULT_FROM_EMAIL = "jitportal <jit@example.com>"


@pytest.fixture
def after_commit(
    django_capture_on_commit_callbacks: Callable[..., AbstractContextManager[Any]],
) -> Callable[[], AbstractContextManager[Any]]:
    """``with after_commit(): service(...)`` runs what the service scheduled on commit
    (the notify task, then the send tasks), as the real commit would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


# ``alice`` (engineering), ``bob`` and ``erin`` (approvers) are the shared people of
# ``tests/support/people.py``.


@pytest.fixture
def root() -> User:
    return UserFactory(
        username="idp|root", email="root@example.com", display_name="Root", is_superuser=True
    )


@pytest.fixture
def people(alice: User, bob: User, erin: User, root: User) -> dict[str, User]:
    return {"alice": alice, "bob": bob, "erin": erin, "root": root}


@pytest.fixture
def resource() -> Resource:
    return ResourceFactory(
        slug="grafana",
        name="Grafana admin",
        approver_groups=["approvers"],
        break_glass_groups=["engineering"],
        break_glass_max_minutes=60,
        auto_approve_rules=[{"group": "oncall", "max_minutes": 60}],
    )


# --- A Slack that plays the other side ----------------------------------------------------------


@dataclass
class SlackServer:
    """An incoming-webhook endpoint on 127.0.0.1 that records every POST.

    ``status`` / ``body`` / ``headers`` set the answer; ``delay`` makes it slow.
    """

    status: int = 200
    body: str = "ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    received: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.received.append(
                    {
                        "path": self.path,
                        "content_type": self.headers.get("Content-Type"),
                        "json": json.loads(raw),
                    }
                )
                if outer.delay:
                    time.sleep(outer.delay)
                body = outer.body.replace("{path}", self.path).encode()
                try:
                    self.send_response(outer.status)
                    for name, value in outer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the client gave up (timeout test)
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def webhook_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/services/T0001/B0001/s3cr3tT0kenXYZ"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def slack_server() -> Iterator[SlackServer]:
    server = SlackServer()
    yield server
    server.stop()


# The audit stream's receivers and settings, for the stream's alert.
from tests.audit.stream_support import http_receiver, local_ca, stream_to  # noqa: E402, F401
