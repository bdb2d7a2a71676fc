"""access_report: CSV output, exit codes, one-line errors, auditing."""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.access.actions import AccessAction
from apps.audit.models import AuditEvent
from tests.factories import GrantFactory, ResourceFactory
from tests.support.processes import run_manage

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("access_report", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_access_report() -> None:
    resource = ResourceFactory(slug="prod-db")
    g = GrantFactory(
        resource=resource,
        request__resource=resource,
        not_before=T0,
        expires_at=T0.replace(hour=10),
        state="expired",
    )
    out, _ = run("--resource", "prod-db", "--between", "2026-11-01T09:30Z", "2026-11-01T12:00Z")
    lines = out.splitlines()
    assert lines[0].startswith("resource,email,access_from_utc,access_until_utc,")
    assert lines[1].startswith(f"prod-db,{g.email},2026-11-01T09:00:00.000000+00:00,")
    out, _ = run("--at", "2026-11-01T10:00Z")
    assert len(out.splitlines()) == 1  # the window is half-open: over at 10:00
    out, _ = run()
    assert len(out.splitlines()) == 1  # nobody now
    reports = AuditEvent.objects.filter(action=AccessAction.REPORT_VIEWED).order_by("seq")
    assert [(e.details["report"], e.details["rows"], e.details["via"]) for e in reports] == [
        ("who_had_access", 1, "command"),
        ("who_had_access_at", 0, "command"),
        ("who_has_access_now", 0, "command"),
    ]
    assert {(e.actor_label, e.actor_id) for e in reports} == {("system", None)}


def test_to_a_file(tmp_path: Path) -> None:
    ResourceFactory(slug="prod-db")
    target = tmp_path / "access.csv"
    out, _ = run("--resource", "prod-db", "--at", "2026-11-01", "-o", str(target))
    assert out == ""
    assert target.read_bytes().startswith(b"resource,email,access_from_utc,access_until_utc,")
    (event,) = AuditEvent.objects.filter(action=AccessAction.REPORT_VIEWED)
    assert event.resource_slug == "prod-db"
    assert event.details["format"] == "csv"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--resource", "nope"], "--resource 'nope': no such resource"),
        (
            ["--at", "2026-11-01", "--between", "2026-11-01", "2026-11-02"],
            "use --at or --between, not both",
        ),
        (["--at", "soon"], "--at: 'soon' is not an ISO"),
        (["--between", "2026-11-02", "2026-11-01"], "--between: UNTIL must be later than FROM"),
        (["-o", "/nonexistent-dir/x.csv"], "cannot write /nonexistent-dir/x.csv"),
        # It prints CSV only: the export's options do not apply.
        (["--format", "jsonl"], "unrecognized arguments: --format"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args: list[str], message: str) -> None:
    with pytest.raises(CommandError) as caught:
        run(*args)
    assert caught.value.returncode == 2
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    assert AuditEvent.objects.count() == 0  # nothing written, nothing audited


@pytest.mark.parametrize(
    ("args", "code", "line"),
    [
        (
            ["access_report", "--nope"],
            2,
            "manage.py access_report: error: unrecognized arguments: --nope (see --help)",
        ),
        (
            ["access_report", "--between", "2026-11-01"],
            2,
            "manage.py access_report: error: argument --between: expected 2 arguments (see --help)",
        ),
    ],
)
def test_from_the_shell_one_line_on_stderr(args: list[str], code: int, line: str) -> None:
    env = {**os.environ, "DEBUG": "true", "DATABASE_URL": "sqlite:///:memory:"}
    done = run_manage(*args, env=env, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (code, "", line + "\n")
