"""Fixtures of the browser story: headless Chromium; the real demo stack is the shared
``demo_stack`` fixture (``tests/conftest.py``, ``tests.support.demo_stack``), as ``make demo``
runs it. The test process never touches the stack's database; it looks through the
browser and the stand-ins' HTTP evaluators only.

Chromium is Debian's ``/usr/bin/chromium``; Playwright never downloads a browser. Without
it the browser tests skip, except with CI=true, where they fail (``require_service``).
A part of the stack that is missing or does not start fails the test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.demo.supervisor import BASE_DIR
from tests.conftest import require_service
from tests.support.demo_stack import DemoStack

__all__ = ["DemoStack"]  # the stack's type, for the browser tests' annotations

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


@pytest.fixture(scope="module")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in [*ARTIFACTS.glob("*.png"), *ARTIFACTS.glob("*.csv")]:
        old.unlink()
    return ARTIFACTS


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
