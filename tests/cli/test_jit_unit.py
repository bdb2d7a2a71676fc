"""The `jit` script on its own: arguments, the stored session, and what it says without a portal."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from jitcli.core import Session, parse_duration, parse_time, save_session
from tests.support.processes import ROOT

JIT = str(Path(sys.executable).with_name("jit"))
COMMANDS = [
    "login", "logout", "resources", "request", "status", "wait", "cancel", "end", "extend",
    "pending", "approve", "reject", "revoke",
]  # fmt: skip


def run_jit(*args: str, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "XDG_CONFIG_HOME": str(home), **env}
    environment.pop("JIT_URL", None)
    return subprocess.run(
        [JIT, *args], capture_output=True, text=True, env=environment, timeout=60, check=False
    )


def fake_token(**claims: object) -> str:
    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'ES256'})}.{part(claims)}.c2ln"


@pytest.mark.parametrize(
    ("text", "minutes"), [("90", 90), ("30m", 30), ("2h", 120), ("1h30m", 90), ("1d", 1440)]
)
def test_durations(text, minutes):
    assert parse_duration(text) == minutes


@pytest.mark.parametrize("text", ["", "0", "2x", "h", "-5m"])
def test_bad_durations(text):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_a_time_without_zone_is_local(monkeypatch):
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        assert parse_time("2030-01-01T09:00") == datetime(2030, 1, 1, 0, 0, tzinfo=UTC)
        assert parse_time("2030-01-01T09:00Z") == datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_the_session_file_is_private(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))

    path = save_session(Session(url="http://localhost:8000", token="t"))

    assert path == tmp_path / "jit" / "session.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


@pytest.mark.parametrize("command", COMMANDS)
def test_help_everywhere(tmp_path, command):
    result = run_jit(command, "--help", home=tmp_path)

    assert result.returncode == 0
    assert result.stdout.startswith("usage: jit " + command)
    assert "exit codes:" in result.stdout


def test_without_a_session_it_says_run_jit_login_in_one_line(tmp_path):
    result = run_jit("status", home=tmp_path)

    assert result.returncode == 3
    assert result.stderr == (
        "jit: Not signed in, or your Pomerium session expired: run `jit login`.\n"
    )


def test_an_expired_session_says_run_jit_login(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    save_session(Session("http://127.0.0.1:9", fake_token(exp=int(time.time()) - 5)))

    result = run_jit("pending", home=tmp_path)

    assert (result.returncode, result.stderr.count("\n")) == (3, 1)
    assert "run `jit login`" in result.stderr


def test_an_unreachable_portal_is_exit_1(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    save_session(Session("http://127.0.0.1:9", fake_token(exp=int(time.time()) + 600)))

    result = run_jit("resources", home=tmp_path)

    assert result.returncode == 1
    assert result.stderr.startswith("jit: Cannot reach the portal at http://127.0.0.1:9/api/v1")


def test_bad_arguments_are_exit_2(tmp_path):
    result = run_jit("request", "grafana-admin", "--for", "soon", "--reason", "x", home=tmp_path)

    assert result.returncode == 2
    assert "is not a duration" in result.stderr


def test_the_cli_imports_nothing_but_the_standard_library_and_requests():
    import ast

    allowed = set(sys.stdlib_module_names) | {"requests", "jitcli"}
    imported = set()
    for path in (ROOT / "jitcli").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])

    assert imported - allowed == set()


def test_login_without_a_portal_says_which_is_missing(tmp_path):
    result = run_jit("login", "--no-browser", home=tmp_path)

    assert (result.returncode, result.stderr) == (
        2,
        "jit: Say which portal: jit login https://jit.example.com\n",
    )
