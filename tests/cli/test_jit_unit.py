"""The `jit` script on its own: arguments, the stored session, and what it says without a portal."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from jitcli.core import parse_duration, parse_minutes, parse_time
from jitcli.sessions import Session, save_session
from tests.cli.canned import as_json, error, fake_token
from tests.cli.inprocess import run_jit
from tests.support.processes import ROOT

JIT = str(Path(sys.executable).with_name("jit"))
COMMANDS = [
    "login", "logout", "resources", "request", "status", "wait", "cancel", "end", "extend",
    "pending", "grants", "approve", "reject", "revoke",
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("10s", 10), ("5m", 300), ("1h", 3600), ("1h30m", 5400), ("1d", 86400),
        ("1.5h", 5400), ("0.5s", 0.5), ("2h0m30s", 7230), (" 2H ", 7200),
    ],
)  # fmt: skip
def test_one_reading_of_a_duration(text, seconds):
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("90", "'90' is not a duration: give a unit, like 90s, 90m or 90h"),
        ("0", "give a unit"),
        ("0m", "'0m': a duration must be longer than zero"),
        ("-5m", "'-5m' is negative; a duration is like 10s, 5m, 1h, 1h30m or 1d"),
        ("", "'' is not a duration like 10s, 5m, 1h, 1h30m or 1d"),
        ("2x", "is not a duration like"),
        ("h", "is not a duration like"),
        ("30m1h", "is not a duration like"),  # largest unit first, each once
        ("1h1h", "is not a duration like"),
        ("367d", "a duration is at most 366d"),
    ],
)
def test_a_bad_duration_says_what_a_duration_looks_like(text, said):
    with pytest.raises(ValueError, match="duration") as caught:
        parse_duration(text)

    assert said in str(caught.value)


@pytest.mark.parametrize(("text", "minutes"), [("30m", 30), ("1.5h", 90), ("120s", 2)])
def test_access_is_asked_in_whole_minutes(text, minutes):
    assert parse_minutes(text) == minutes


def test_access_of_part_of_a_minute_is_refused():
    with pytest.raises(ValueError, match="whole minutes, like 30m or 1h30m"):
        parse_minutes("90s")


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


def test_the_installed_script_runs(tmp_path):
    """The one subprocess test: ``jit`` on PATH is the console script of ``jitcli.main``."""
    environment = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path)}
    environment.pop("JIT_URL", None)
    result = subprocess.run(
        [JIT, "--help"], capture_output=True, text=True, env=environment, timeout=60, check=False
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: jit ")
    assert all(command in result.stdout for command in COMMANDS)
    assert "exit codes:" in result.stdout


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


# --- What each kind of HTTP answer becomes -------------------------------------------------
# A plain HTTP server with canned answers: the portal itself never answers 5xx or non-JSON
# on purpose, and the client's promise (docs/cli.md, exit codes) is about
# exactly those answers. The flows against the real portal are in test_jit_demo.py.


@pytest.mark.parametrize(
    ("answer", "code", "said"),
    [
        (
            error(400, "Invalid input", fields={"duration_minutes": "too long"}),
            2,
            "jit: Invalid input (duration_minutes: too long)\n",
        ),
        (error(403, "You may not see this"), 4, "jit: You may not see this\n"),
        (error(404, "No such request"), 4, "jit: No such request\n"),
        (error(409, "Already decided"), 5, "jit: Already decided\n"),
        (error(422, "Too long for this resource"), 5, "jit: Too long for this resource\n"),
        (error(503, "Try later"), 1, "jit: Try later\n"),
        (error(403, "Who are you", code="not_signed_in"), 3, None),
        ((500, {"Content-Type": "text/html"}, b"<h1>Server Error</h1>"), 1, None),
        ((200, {"Content-Type": "text/html"}, b"<h1>Hello</h1>"), 1, None),
        ((302, {"Location": "https://auth.example.com/"}, b""), 3, None),
        ((401, {}, b""), 3, None),
    ],
)
def test_each_answer_has_its_exit_code_and_one_line(portal, tmp_path, answer, code, said):
    portal.answer("GET", "/requests/7", answer)

    result = run_jit("status", "7", home=tmp_path)

    assert (result.returncode, result.stdout, result.stderr.count("\n")) == (code, "", 1)
    if said is not None:
        assert result.stderr == said
    if code == 3:
        assert "run `jit login`" in result.stderr
    method, path, headers, _ = portal.seen[0]
    assert (method, path) == ("GET", "/api/v1/requests/7")
    assert headers["Authorization"].startswith("Pomerium ey")


def test_a_failed_request_is_sent_once_more_with_the_same_key(portal, tmp_path):
    created = {
        "id": 12, "kind": "new", "resource_name": "Grafana admin", "state": "pending",
        "approvals": 0, "approvals_required": 1, "decision_reason": "", "grant": None,
    }  # fmt: skip
    portal.answer("POST", "/requests", error(502, "Bad gateway"), as_json(201, created))

    result = run_jit(
        "request", "grafana-admin", "--for", "1h30m", "--reason", "Tune the rules", home=tmp_path
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "Request 12 (new) for Grafana admin: pending, 0/1 approvals\nWait for it: jit wait 12\n"
    )
    (_, _, first, body), (_, _, second, _) = portal.seen
    assert first["Idempotency-Key"] == second["Idempotency-Key"]
    assert json.loads(body) == {
        "resource": "grafana-admin", "duration_minutes": 90, "justification": "Tune the rules",
        "ticket": "",
    }  # fmt: skip


def test_a_refused_request_is_not_sent_again(portal, tmp_path):
    portal.answer("POST", "/requests", error(409, "You already asked"))

    result = run_jit("request", "grafana-admin", "--for", "1h", "--reason", "x", home=tmp_path)

    assert (result.returncode, len(portal.seen)) == (5, 1)


def test_version(tmp_path):
    result = run_jit("--version", home=tmp_path)

    assert (result.returncode, result.stdout) == (0, "jit 0.2.0\n")


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["status", "0"], "'0' is not an id like 12"),
        (["request", "x", "--for", "1h", "--reason", "y", "--at", "tomorrow"], "is not a time"),
    ],
)
def test_more_bad_arguments_are_exit_2(tmp_path, argv, said):
    result = run_jit(*argv, home=tmp_path)

    assert (result.returncode, result.stdout) == (2, "")
    assert said in result.stderr


def _pending_row(n: int) -> dict[str, object]:
    return {
        "id": n, "requester": f"user{n}@example.com", "resource": "grafana", "kind": "new",
        "duration_minutes": 60, "approvals": 0, "approvals_required": 1, "approved_by_me": False,
        "created_at": "2026-12-01T10:00:00Z", "justification": "On call",
    }  # fmt: skip


def test_a_paged_list_is_followed_to_its_last_page(portal, tmp_path):
    # The portal pages its lists (docs/api.md, "Lists and paging"): a page names the next
    # one in X-Next-Cursor until the last.
    first, second = [_pending_row(n) for n in (1, 2)], [_pending_row(3)]
    paged = {"Content-Type": "application/json", "X-Next-Cursor": "abc"}
    portal.answer("GET", "/pending", (200, paged, json.dumps(first).encode()), as_json(200, second))

    result = run_jit("pending", "--json", home=tmp_path)

    assert result.returncode == 0, result.stderr
    assert [row["id"] for row in json.loads(result.stdout)] == [1, 2, 3]
    (_, first_path, _, _), (_, second_path, _, _) = portal.seen
    assert first_path == "/api/v1/pending?limit=500"
    assert second_path == "/api/v1/pending?limit=500&cursor=abc"


def test_every_exit_code_is_documented_in_the_help_and_in_docs_cli():
    import re

    from jitcli import core
    from jitcli.main import EXIT_CODES

    names = "OK FAILED USAGE NOT_SIGNED_IN REFUSED CONFLICT ENDED TIMED_OUT NOT_ENFORCED"
    codes = {getattr(core, name) for name in names.split()}
    documented = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")

    assert set(map(int, re.findall(r"^\| (\d+) \|", documented, re.MULTILINE))) == codes
    assert set(map(int, re.findall(r"^  (\d+)  ", EXIT_CODES, re.MULTILINE))) == codes


def test_a_single_request_shows_its_stages_and_who_can_approve() -> None:
    from jitcli.objects import request_line

    req = {
        "id": 7,
        "kind": "new",
        "resource_name": "Prod DB",
        "state": "pending",
        "approvals": 1,
        "approvals_required": 2,
        "decision_reason": "",
        "auto_approval_note": "",
        "grant": None,
        "stages": [
            {
                "number": 1,
                "name": "Team lead",
                "count": 1,
                "approvers": ["tina@example.com"],
                "complete": True,
                "can_approve": [],
                "groups": ["team-leads"],
            },
            {
                "number": 2,
                "name": "Security",
                "count": 1,
                "approvers": [],
                "complete": False,
                "can_approve": ["sam@example.com"],
                "groups": ["security"],
            },
        ],
    }
    assert request_line(req).splitlines() == [
        "Request 7 (new) for Prod DB: pending, 1/2 approvals",
        "  Stage 1 (Team lead): 1/1 done",
        "  Stage 2 (Security): 0/1, can approve now: sam@example.com",
    ]
