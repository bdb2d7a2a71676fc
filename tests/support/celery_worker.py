"""A real Celery worker subprocess for integration tests and the bench.

It runs ``celery -A jitportal worker`` with the given environment, waits until the
worker says it is ready, and stops it (warm shutdown, then kill) on ``stop()``. The log
goes to a file so a failing test can show its tail.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def database_url(settings_dict: Mapping[str, Any]) -> str:
    """A DATABASE_URL for a Django PostgreSQL connection's settings."""
    user = settings_dict.get("USER") or "postgres"
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{password}" if password else user
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{auth}@{host}:{port}/{settings_dict['NAME']}"


QUEUES = ("zero", "notifications", "default")


def purge_broker(url: str) -> None:
    """Drop queued and unacknowledged messages a previous run may have left behind."""
    import redis

    client = redis.Redis.from_url(url)
    client.delete(*QUEUES, "unacked", "unacked_index", "unacked_mutex")
    client.close()


class CeleryWorker:
    """``with CeleryWorker(env) as worker: ...`` - a worker process group of our own."""

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        pool: str = "prefork",
        concurrency: int = 2,
        queues: tuple[str, ...] = QUEUES,
        ready_timeout: float = 60.0,
    ) -> None:
        self.env = {**os.environ, **env}
        self.pool = pool
        self.concurrency = concurrency
        self.queues = queues
        self.ready_timeout = ready_timeout
        self.process: subprocess.Popen[bytes] | None = None
        handle, name = tempfile.mkstemp(prefix="celery-worker-", suffix=".log")
        os.close(handle)
        self.log_path = Path(name)

    def start(self) -> CeleryWorker:
        argv = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "jitportal",
            "worker",
            "--pool",
            self.pool,
            "--concurrency",
            str(self.concurrency),
            "-Q",
            ",".join(self.queues),
            "--hostname",
            f"{'+'.join(self.queues)}@%h",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "INFO",
        ]
        with self.log_path.open("wb") as log:
            # A session of its own, so stop() can end the worker and its pool children
            # by their process group, and nothing else.
            self.process = subprocess.Popen(
                argv, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Celery worker exited early:\n{self.log_tail()}")
            if " ready." in self.log_path.read_text(errors="replace"):
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"Celery worker not ready in {self.ready_timeout}s:\n{self.log_tail()}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)  # warm shutdown of our own group
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
        except ProcessLookupError:
            pass

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def __enter__(self) -> CeleryWorker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
