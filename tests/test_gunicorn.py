"""The portal as gunicorn serves it: big assertions get in, missing static files stop it.

Each test starts a real gunicorn with ``jitportal/gunicorn.conf.py``, as the image does.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support.jwks import AUDIENCE, JwksServer, SigningKey, claims_for, mint
from tests.support.processes import ROOT, free_ports, run_manage

GUNICORN = str(Path(sys.executable).with_name("gunicorn"))


def base_env(**extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    return {**keep, "GUNICORN_WORKER_TMP_DIR": "/tmp", "WEB_CONCURRENCY": "1", **extra}


class Gunicorn:
    def __init__(self, env: dict[str, str]) -> None:
        (self.port,) = free_ports(1)
        self.log = open(Path(env["LOG_DIR"]) / "gunicorn.log", "w+")  # noqa: SIM115
        self.process = subprocess.Popen(
            [GUNICORN, "-c", "jitportal/gunicorn.conf.py", "jitportal.wsgi:application"],
            cwd=ROOT,
            env={**env, "GUNICORN_BIND": f"127.0.0.1:{self.port}"},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.output()
            try:
                if self.get("/healthz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError("gunicorn did not answer /healthz:\n" + self.output())

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", path, headers={"Host": "127.0.0.1", **(headers or {})})
            response = conn.getresponse()
            return response.status, response.read().decode("utf-8", "replace")
        finally:
            conn.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


@pytest.fixture
def portal_env(tmp_path: Path, jwks_server: JwksServer) -> dict[str, str]:
    env = base_env(
        DEBUG="true",
        DATABASE_URL=f"sqlite:///{tmp_path / 'portal.sqlite3'}",
        JWKS_ENDPOINT=jwks_server.url,
        POMERIUM_JWT_AUDIENCE=AUDIENCE,
        ALLOWED_HOSTS="127.0.0.1",
        LOG_DIR=str(tmp_path),
        BROKER_DATA_DIR=str(tmp_path / "broker"),
    )
    done = run_manage("migrate", "--noinput", env=env, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return env


@contextmanager
def start(env: dict[str, str]) -> Iterator[Gunicorn]:
    server = Gunicorn(env)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def gunicorn(portal_env: dict[str, str]) -> Iterator[Gunicorn]:
    with start(portal_env) as server:
        yield server


def big_assertion(key: SigningKey, size: int) -> str:
    """An assertion of about ``size`` bytes: someone in hundreds of groups."""
    groups: list[str] = []
    token = ""
    while len(token) < size:
        groups.extend(f"team-{len(groups):04d}-with-a-realistic-group-name" for _ in range(50))
        token = mint(key, claims_for("idp|many", "many@example.com", groups=groups, name="Many"))
    return token


def test_a_40_kb_assertion_is_accepted(gunicorn: Gunicorn, signing_key: SigningKey) -> None:
    gunicorn.wait_ready()
    token = big_assertion(signing_key, 40 * 1024)
    assert 40 * 1024 <= len(token) < 48 * 1024
    status, body = gunicorn.get("/preferences", {"X-Pomerium-Jwt-Assertion": token})
    assert status == 200, body[:500]
    assert "Many" in body  # signed in as the person the assertion names


def test_gunicorns_default_limit_would_lock_them_out(
    portal_env: dict[str, str], signing_key: SigningKey
) -> None:
    # The control: with gunicorn's stock 8190-byte limit the same person is refused.
    with start({**portal_env, "GUNICORN_LIMIT_REQUEST_FIELD_SIZE": "8190"}) as server:
        server.wait_ready()
        token = big_assertion(signing_key, 40 * 1024)
        status, _ = server.get("/preferences", {"X-Pomerium-Jwt-Assertion": token})
        assert status in (400, 431)


def test_production_without_collectstatic_refuses_to_start(tmp_path: Path) -> None:
    env = base_env(
        SECRET_KEY="a-production-secret-key-for-this-test-only-0123456789",
        ALLOWED_HOSTS="jit.example.com",
        JWKS_ENDPOINT="https://jit.example.com/.well-known/pomerium/jwks.json",
        POMERIUM_JWT_AUDIENCE="jit.example.com",
        DATABASE_URL=f"sqlite:///{tmp_path / 'portal.sqlite3'}",
        CELERY_BROKER_URL="memory://",
        STATIC_ROOT=str(tmp_path / "static-never-collected"),
        LOG_DIR=str(tmp_path),
    )
    with start(env) as server:
        code = server.process.wait(timeout=60)
        output = server.output()
        assert code != 0
        lines = [line for line in output.splitlines() if "refuses to start" in line]
        assert lines == [
            "jitportal refuses to start: Static files have not been collected "
            f"({tmp_path / 'static-never-collected' / 'staticfiles.json'} is missing): run "
            "'python manage.py collectstatic --noinput' before starting the portal."
        ]
        assert "Traceback" not in output


def test_check_names_the_missing_static_files(tmp_path: Path) -> None:
    env: dict[str, Any] = base_env(
        SECRET_KEY="a-production-secret-key-for-this-test-only-0123456789",
        ALLOWED_HOSTS="jit.example.com",
        JWKS_ENDPOINT="https://jit.example.com/.well-known/pomerium/jwks.json",
        POMERIUM_JWT_AUDIENCE="jit.example.com",
        DATABASE_URL=f"sqlite:///{tmp_path / 'portal.sqlite3'}",
        CELERY_BROKER_URL="memory://",
        STATIC_ROOT=str(tmp_path / "nothing-here"),
    )
    result = run_manage("check", env=env)
    assert result.returncode != 0
    assert "jitportal.E003" in result.stderr
    assert "collectstatic --noinput" in result.stderr


def config(**env: str) -> dict[str, Any]:
    """The settings gunicorn reads from the config file, under ``env`` alone."""
    import runpy
    from unittest import mock

    with mock.patch.dict(os.environ, env, clear=True):
        return runpy.run_path(str(ROOT / "jitportal" / "gunicorn.conf.py"))


def test_workers_are_recycled_rarely_and_not_together() -> None:
    # Each restart boots Django again; at 1,000 requests a worker restarted every few
    # seconds under load and the restarts showed in the p99
    # (bench/results/2026-12-01-gunicorn-recycling.md); at 10,000 a bench round of /healthz
    # load still restarted one (bench/results/2026-12-07-web-issue24.md).
    settings = config()
    assert settings["max_requests"] >= 100_000
    assert settings["max_requests_jitter"] >= settings["max_requests"] // 20
    overridden = config(GUNICORN_MAX_REQUESTS="500", GUNICORN_MAX_REQUESTS_JITTER="0")
    assert (overridden["max_requests"], overridden["max_requests_jitter"]) == (500, 0)


@pytest.fixture
def gunicorn_hooks() -> Iterator[dict[str, Any]]:
    import gc
    import runpy

    hooks = runpy.run_path(str(ROOT / "jitportal" / "gunicorn.conf.py"))
    gc.unfreeze()
    try:
        yield hooks
    finally:
        gc.unfreeze()


def test_a_worker_freezes_what_it_loaded_and_again_after_warming_up(
    gunicorn_hooks: dict[str, Any],
) -> None:
    """Full garbage collections skip what lives as long as the worker (bench/README.md):
    frozen once the application is loaded, and once more after the first requests."""
    import gc
    from types import SimpleNamespace

    worker = SimpleNamespace(nr=0)
    gunicorn_hooks["post_worker_init"](worker)
    after_load = gc.get_freeze_count()
    assert after_load > 0
    gc.unfreeze()
    warm = gunicorn_hooks["GC_FREEZE_AFTER_REQUESTS"]
    for nr in (1, warm - 1):
        worker.nr = nr
        gunicorn_hooks["post_request"](worker, None, {}, None)
        assert gc.get_freeze_count() == 0, nr
    worker.nr = warm
    gunicorn_hooks["post_request"](worker, None, {}, None)
    assert gc.get_freeze_count() > 0
    gc.unfreeze()
    # Once only: later requests collect nothing extra.
    worker.nr = warm + 1
    gunicorn_hooks["post_request"](worker, None, {}, None)
    assert gc.get_freeze_count() == 0
