"""The real demo stack on spare ports, brought up ONE way for every test that needs it.

What ``make demo`` runs: ``run_demo`` prepares the database (migrate + seed_demo) and the
same ``Supervisor`` starts the Zero and Core stand-ins, Slack and on-call stand-ins, the
portal, a Celery worker with beat on the filesystem broker and the dev sign-in proxy,
here on spare loopback ports with a temporary data folder and its own SQLite file. The
test process never touches the stack's database: it looks through HTTP only.

A part that is missing or does not start fails the test (never a skip).
``tests/conftest.py`` turns ``running_demo_stack`` into the ``demo_stack`` fixture.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from devtools.demo.supervisor import (
    BASE_DIR,
    ROUTE_HOST,
    DemoPorts,
    Supervisor,
    demo_children,
    demo_environment,
    prepare_data_dir,
)
from tests.support.processes import free_ports

LOGS = BASE_DIR / "test-artifacts" / "demo-stack"
# The test run's storage and switches that must not leak into the stack's children: the
# stack keeps its own SQLite file, broker folders and key, whatever the test run uses.
NOT_FOR_THE_STACK = (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "REDIS_URL",
    "SECRET_KEY",
    "SECRET_KEY_FILE",
    "BROKER_DATA_DIR",
    "CELERY_BEAT_SCHEDULE_FILENAME",
    "DJANGO_ALLOW_ASYNC_UNSAFE",
)


def _call(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Content-Type": "application/json"} if body else {}
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        text = response.read().decode("utf-8", "replace")
    finally:
        conn.close()
    try:
        return response.status, json.loads(text)
    except ValueError:
        return response.status, text


@dataclass
class DemoStack:
    """The running stack: its ports, environment, log, and the stand-ins' evaluators."""

    ports: DemoPorts
    data_dir: Path
    env: dict[str, str] = field(repr=False)
    log: io.StringIO = field(repr=False)

    @property
    def url(self) -> str:
        # The route host the proxy signs assertions for, as the README tells people to open.
        return f"http://{ROUTE_HOST}:{self.ports.proxy}"

    def evaluate(self, policy: str, email: str) -> tuple[int, dict[str, Any] | str]:
        """GET the Zero simulator's ``/_sim/evaluate``: (status, JSON body or raw text)."""
        query = urlencode({"policy": policy, "email": email})
        return _call(self.ports.zero, "GET", "/_sim/evaluate?" + query)

    def core_evaluate(self, route: str, email: str) -> tuple[int, dict[str, Any] | str]:
        """POST the Core stand-in's ``/_sim/evaluate``: would Core let ``email`` through
        ``route``? (status, JSON body or raw text)."""
        body = json.dumps({"target": route, "email": email}).encode()
        return _call(self.ports.core, "POST", "/_sim/evaluate", body)

    def core_state(self) -> dict[str, Any]:
        """The Core stand-in's policies and routes (``GET /_sim/state``)."""
        status, state = _call(self.ports.core, "GET", "/_sim/state")
        assert status == 200 and isinstance(state, dict), state
        return state

    def log_tail(self, chars: int = 6000) -> str:
        return self.log.getvalue()[-chars:]


@contextlib.contextmanager
def running_demo_stack(data_dir: Path, name: str = "stack") -> Iterator[DemoStack]:
    """Start the stack as ``make demo`` does (migrate, seed_demo, the children), yield it
    once every part is ready, stop it; the children's output goes to ``LOGS/<name>.log``."""
    # Imported here: the management command module needs Django's settings configured.
    from devtools.management.commands.run_demo import Command as RunDemo

    ports = DemoPorts(*free_ports(len(DemoPorts().all())))
    env = demo_environment(
        ports, data_dir, {k: v for k, v in os.environ.items() if k not in NOT_FOR_THE_STACK}
    )
    log = io.StringIO()
    prepare_data_dir(data_dir)
    supervisor = Supervisor(env, out=log)
    try:
        # migrate + seed_demo, exactly as `make demo` does before it starts the children
        # (a failure raises CommandError, which fails the test).
        RunDemo(stdout=log, stderr=log)._prepare_database(supervisor)
        for child in demo_children(ports):
            supervisor.add(child)
        supervisor.start()
        supervisor.wait_ready(timeout=90)
        yield DemoStack(ports=ports, data_dir=data_dir, env=env, log=log)
    finally:
        supervisor.stop()
        # The children's output, for whoever reads a failure (or is curious).
        LOGS.mkdir(parents=True, exist_ok=True)
        (LOGS / f"{name}.log").write_text(log.getvalue(), encoding="utf-8")
