"""`jit login` against the demo stack, finished by a click in real Chromium (issue 25, §5).

The installed ``jit`` runs as its own process, as in a terminal: it prints the sign-in URL
(``--no-browser``: the test is the person who opens it), Chromium opens it, the person
clicks "Sign in as Alice", and the dev sign-in proxy's form goes on to jit's loopback
callback. The HTTP-client tests of the login never saw that Chromium refused that step
(the proxy's CSP ``form-action 'self'``); this one would.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import DemoStack

pytestmark = [pytest.mark.browser, pytest.mark.slow]

JIT = str(Path(sys.executable).with_name("jit"))


class Terminal:
    """One `jit` process; its stderr read as it comes (the sign-in URL, progress)."""

    def __init__(self, home: Path, *args: str) -> None:
        self.env = {**os.environ, "XDG_CONFIG_HOME": str(home), "TZ": "Europe/Berlin"}
        self.env.pop("JIT_URL", None)
        self.process = subprocess.Popen(
            [JIT, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
        )
        self.err_lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.err_lines.append(line)

    def line_starting(self, prefix: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.err_lines:
                if line.strip().startswith(prefix):
                    return line.strip()
            if self.process.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        return ""

    def finish(self, timeout: float = 30) -> tuple[int, str, str]:
        assert self.process.stdout is not None
        try:
            self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait(5)
        self._reader.join(5)
        return self.process.returncode, self.process.stdout.read(), "".join(self.err_lines)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [JIT, *args], capture_output=True, text=True, env=self.env, timeout=60, check=False
        )


def test_jit_login_completes_by_a_click_in_chromium(
    demo_stack: DemoStack, page: Any, tmp_path: Path, artifacts: Path
) -> None:
    refused: list[str] = []
    page.on(
        "console",
        lambda message: refused.append(message.text) if "Content Security" in message.text else 0,
    )
    login = Terminal(tmp_path, "login", demo_stack.url, "--no-browser", "--timeout", "90s")
    url = login.line_starting("http")
    if not url:
        code, out, err = login.finish()
        pytest.fail(f"jit login printed no sign-in URL (exit {code}): {err}{out}")

    page.goto(url)
    page.get_by_role("button", name="Sign in as Alice").click()
    page.get_by_text("Signed in. You can close this window").wait_for()
    page.screenshot(path=str(artifacts / "jit-login-callback.png"))
    code, out, err = login.finish()

    assert refused == []
    assert code == 0, err
    assert out.startswith(f"Signed in to {demo_stack.url} as alice@example.com, until ")
    assert page.url.startswith("http://127.0.0.1:")
    assert "pomerium_jwt=" in page.url
    # The process that waited holds the session now: the next command uses it.
    status = login.run("status")
    assert status.returncode == 0, status.stderr
    resources = login.run("resources")
    assert resources.returncode == 0, resources.stderr
    assert "grafana-admin" in resources.stdout
