"""Fixtures of the browser story: the real demo stack on spare ports, and headless Chromium.

The stack is what ``make demo`` runs: ``run_demo`` prepares the database (migrate +
seed_demo) and the same ``Supervisor`` starts the Zero simulator, the portal, a Celery
worker with beat on the filesystem broker and the dev sign-in proxy, here on spare
loopback ports with a temporary data folder. The test process never touches the stack's
database; it looks through the browser and the simulator's HTTP evaluator only.

Chromium is Debian's ``/usr/bin/chromium``; Playwright never downloads a browser. Without
it the browser tests skip, except with CI=true, where they fail (``require_service``).
"""

from __future__ import annotations

import http.client
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from devtools.demo.supervisor import (
    BASE_DIR,
    ROUTE_HOST,
    DemoPorts,
    Supervisor,
    demo_children,
    demo_environment,
    missing_parts,
    prepare_data_dir,
)
from devtools.management.commands.run_demo import Command as RunDemo
from tests.conftest import require_service
from tests.support.processes import free_ports

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = BASE_DIR / "test-artifacts" / "browser"
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


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Browser tests need Chromium: skip locally, fail in CI (before the stack starts)."""
    if item.get_closest_marker("browser"):
        require_service(
            "Chromium",
            os.path.exists(CHROMIUM),
            f"{CHROMIUM} is missing; install Debian's chromium package (apt-get install "
            "chromium); Playwright's own browser downloads are not used",
        )
        missing = missing_parts()
        require_service("The demo stack", not missing, f"missing modules: {missing}")


@dataclass
class DemoStack:
    """The running stack: where to point the browser, and the simulator's evaluator."""

    ports: DemoPorts
    data_dir: Path
    log: io.StringIO = field(repr=False)

    @property
    def url(self) -> str:
        # The route host the proxy signs assertions for, as the README tells people to open.
        return f"http://{ROUTE_HOST}:{self.ports.proxy}"

    def evaluate(self, policy: str, email: str) -> tuple[int, dict[str, Any] | str]:
        """GET the simulator's ``/_sim/evaluate``: (status, JSON body or raw text)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.ports.zero, timeout=10)
        try:
            conn.request("GET", "/_sim/evaluate?" + urlencode({"policy": policy, "email": email}))
            response = conn.getresponse()
            body = response.read().decode("utf-8", "replace")
        finally:
            conn.close()
        try:
            return response.status, json.loads(body)
        except ValueError:
            return response.status, body

    def log_tail(self, chars: int = 6000) -> str:
        return self.log.getvalue()[-chars:]


@pytest.fixture(scope="module")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in [*ARTIFACTS.glob("*.png"), *ARTIFACTS.glob("*.csv")]:
        old.unlink()
    return ARTIFACTS


@pytest.fixture(scope="module")
def demo_stack(tmp_path_factory: pytest.TempPathFactory, artifacts: Path) -> Iterator[DemoStack]:
    data_dir = tmp_path_factory.mktemp("demo-data")
    ports = DemoPorts(*free_ports(5))
    base_env = {k: v for k, v in os.environ.items() if k not in NOT_FOR_THE_STACK}
    log = io.StringIO()
    prepare_data_dir(data_dir)
    supervisor = Supervisor(demo_environment(ports, data_dir, base_env), out=log)
    stack = DemoStack(ports=ports, data_dir=data_dir, log=log)
    try:
        # migrate + seed_demo, exactly as `make demo` does before it starts the children.
        RunDemo(stdout=log, stderr=log)._prepare_database(supervisor)
        for child in demo_children(ports):
            supervisor.add(child)
        supervisor.start()
        supervisor.wait_ready(timeout=90)
        yield stack
    finally:
        supervisor.stop()
        # The children's output, for whoever reads a failure (or is curious).
        (artifacts / "stack.log").write_text(log.getvalue(), encoding="utf-8")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(
        accept_downloads=True, viewport={"width": 1280, "height": 900}, locale="en-GB"
    )
    context.set_default_timeout(20_000)
    try:
        yield context.new_page()
    finally:
        context.close()
