"""A database outage is a 503 with Retry-After and a plain page, one log line each, and the
portal recovers by itself (issue 25, section 6).

Against a real PostgreSQL that the test stops and starts: a private instance (``initdb``,
``pg_ctl``) on a free port in a temporary directory, never the shared server. The portal
runs as gunicorn serves it, once as in production (DEBUG off) and once as the demo runs it.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.jwks import AUDIENCE, JwksServer, SigningKey, claims_for, mint
from tests.support.processes import free_ports, run_manage
from tests.test_gunicorn import Gunicorn, base_env, start

pytestmark = pytest.mark.postgres

BINARIES = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))


@dataclass
class PrivatePostgres:
    """One PostgreSQL instance of this test's own: stopped and started at will."""

    root: Path
    port: int

    @property
    def bin(self) -> Path:
        return BINARIES[-1].parent

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/jitportal"

    def run(self, tool: str, *args: str) -> None:
        # initdb and the server refuse to run as root: run them as the postgres user then.
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        done = subprocess.run(
            [*prefix, str(self.bin / tool), *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, f"{tool}: {done.stdout}{done.stderr}"

    def init(self) -> None:
        self.run("initdb", "-D", str(self.root / "data"), "-U", "postgres", "--auth=trust",
                 "-E", "UTF8", "--no-sync")  # fmt: skip

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.run("pg_ctl", "-D", str(self.root / "data"), "-l", str(self.root / "server.log"),
                 "-o", options, "-w", "start")  # fmt: skip

    def stop(self) -> None:
        self.run("pg_ctl", "-D", str(self.root / "data"), "-m", "fast", "-w", "stop")


@pytest.fixture(scope="module")
def postgres() -> Iterator[PrivatePostgres]:
    if not BINARIES or (shutil.which("runuser") is None and os.geteuid() == 0):
        pytest.fail("the PostgreSQL server binaries (initdb, pg_ctl) are needed")
    root = Path(tempfile.mkdtemp(prefix="jit-outage-pg-", dir="/tmp"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    (port,) = free_ports(1)
    server = PrivatePostgres(root, port)
    server.init()
    server.start()
    try:
        server.run("createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "jitportal")
        yield server
    finally:
        with contextlib.suppress(AssertionError):  # already stopped by a failed test
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def migrated(postgres: PrivatePostgres) -> str:
    env = base_env(DEBUG="true", DATABASE_URL=postgres.url, CELERY_BROKER_URL="memory://")
    done = run_manage("migrate", "--noinput", env=env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return postgres.url


def portal_env(mode: str, database_url: str, jwks: JwksServer, tmp_path: Path) -> dict[str, str]:
    common = {
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": "memory://",
        "JWKS_ENDPOINT": jwks.url,
        "POMERIUM_JWT_AUDIENCE": AUDIENCE,
        "ALLOWED_HOSTS": "127.0.0.1",
        "LOG_DIR": str(tmp_path),
        "LOG_FORMAT": "text",
        "PORTAL_APPROVER_GROUPS": "approvers",
    }
    if mode == "demo":
        return base_env(DEBUG="true", **common)
    static = tmp_path / "static"
    env = base_env(
        SECRET_KEY="a-production-secret-key-for-this-test-only-0123456789",
        SECURE_SSL_REDIRECT="false",
        STATIC_ROOT=str(static),
        **common,
    )
    done = run_manage("collectstatic", "--noinput", env=env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return env


def call(
    server: Gunicorn, method: str, path: str, headers: dict[str, str], body: str = ""
) -> tuple[int, dict[str, str], str]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
    try:
        conn.request(method, path, body=body or None, headers={"Host": "127.0.0.1", **headers})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode()
    finally:
        conn.close()


@pytest.mark.parametrize("mode", ["production", "demo"])
def test_an_outage_is_a_503_with_one_log_line_and_the_portal_recovers(
    mode: str,
    postgres: PrivatePostgres,
    migrated: str,
    jwks_server: JwksServer,
    signing_key: SigningKey,
    tmp_path: Path,
) -> None:
    def person() -> dict[str, str]:
        token = mint(signing_key, claims_for("idp|bob", "bob@example.com", groups=["approvers"]))
        return {"X-Pomerium-Jwt-Assertion": token}

    form = urllib.parse.urlencode({"resource": "x", "duration": "60", "start": "now"})
    pages = [
        ("GET", "/", ""),
        ("GET", "/requests/new", ""),
        ("GET", "/admin/", ""),
        ("POST", "/requests/new", form),
        ("GET", "/api/v1/grants", ""),
    ]
    with start(portal_env(mode, migrated, jwks_server, tmp_path)) as server:
        server.wait_ready()
        assert call(server, "GET", "/", person())[0] == 200
        postgres.stop()
        try:
            answers = []
            for method, path, body in pages:
                headers = person()
                if method == "POST":
                    headers["Content-Type"] = "application/x-www-form-urlencoded"
                answers.append((path, *call(server, method, path, headers, body)))
            health = call(server, "GET", "/healthz", {})
        finally:
            postgres.start()
        # It recovers by itself once the database answers again.
        deadline = time.monotonic() + 30
        while call(server, "GET", "/", person())[0] != 200:
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.5)
        log = server.output()

    for path, status, headers, body in answers:
        assert status == 503, (path, status, body[:300])
        assert headers.get("Retry-After") == "30", path
        if path.startswith("/api/"):
            assert '"code": "unavailable"' in body
        else:
            assert "jitportal is briefly unavailable; nothing you did was lost." in body
            assert "Traceback" not in body and "OperationalError" not in body
    assert health[0] == 503
    assert "Traceback" not in log, log
    lines = [line for line in log.splitlines() if "database unavailable: answered 503" in line]
    assert len(lines) == len(pages), log
