"""Running ``jit`` in this process: ``jitcli.main.main(argv)`` with a person's own environment.

The commands read their configuration from the environment when they run
(``XDG_CONFIG_HOME`` for the stored session, ``JIT_URL``, ``TZ`` for local times), so a call
sets exactly those for its duration and puts the previous values back afterwards. Output is
captured from ``sys.stdout``/``sys.stderr``, where the commands write it; argparse's own
exits (``--help``, bad arguments) become the exit code, as in the installed script.
"""

from __future__ import annotations

import io
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

from jitcli.main import main


@dataclass
class Ran:
    """What one ``jit`` invocation did, shaped like ``subprocess.CompletedProcess``."""

    returncode: int
    stdout: str
    stderr: str


@contextmanager
def person_environment(
    home: Path, tz: str | None = None, jit_url: str | None = None
) -> Iterator[None]:
    """``XDG_CONFIG_HOME=home``, ``JIT_URL`` only if given, and ``TZ`` if given, for the
    block only."""
    wanted: dict[str, str | None] = {"XDG_CONFIG_HOME": str(home), "JIT_URL": jit_url}
    if tz is not None:
        wanted["TZ"] = tz
    saved = {name: os.environ.get(name) for name in wanted}
    try:
        for name, value in wanted.items():
            _set(name, value)
        if tz is not None:
            time.tzset()
        yield
    finally:
        for name, value in saved.items():
            _set(name, value)
        if tz is not None:
            time.tzset()


def _set(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    return exc.code if isinstance(exc.code, int) else 1


def run_jit(*args: str, home: Path, tz: str | None = None, jit_url: str | None = None) -> Ran:
    """``jit ARGS`` as the person whose config directory is ``home``."""
    out, err = io.StringIO(), io.StringIO()
    with person_environment(home, tz, jit_url), redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:
            code = _exit_code(exc)
    return Ran(code, out.getvalue(), err.getvalue())


class Background:
    """``jit ARGS`` running in a thread (``jit login`` waits for the browser's callback).

    ``sys.stdout``/``sys.stderr`` stay redirected until :meth:`finish`, so the test reads
    what the command has said so far with :meth:`stderr_so_far`.
    """

    def __init__(self, *args: str, home: Path) -> None:
        self.out, self.err = io.StringIO(), io.StringIO()
        self.code: int | None = None
        self._stack = [
            person_environment(home),
            redirect_stdout(self.out),
            redirect_stderr(self.err),
        ]
        for manager in self._stack:
            manager.__enter__()
        self.thread = threading.Thread(target=self._run, args=(list(args),), daemon=True)
        self.thread.start()

    def _run(self, argv: list[str]) -> None:
        try:
            self.code = main(argv)
        except SystemExit as exc:
            self.code = _exit_code(exc)

    def line_starting(self, prefix: str, timeout: float = 10) -> str:
        """The first stderr line (stripped) that starts with ``prefix``; '' if none in time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.err.getvalue().splitlines():
                if line.strip().startswith(prefix):
                    return line.strip()
            if not self.thread.is_alive():
                break
            time.sleep(0.05)
        return ""

    def finish(self, timeout: float = 30) -> Ran:
        self.thread.join(timeout)
        alive = self.thread.is_alive()
        for manager in reversed(self._stack):
            manager.__exit__(None, None, None)
        assert not alive, "jit did not finish: " + self.err.getvalue()
        assert self.code is not None
        return Ran(self.code, self.out.getvalue(), self.err.getvalue())
