"""export_audit and verify_audit: output, exit codes, one-line errors, auditing."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.audit.management.commands import export_audit
from apps.audit.models import AuditAction, AuditEvent
from tests.support.processes import run_manage

from .conftest import T0, add_entries, add_entry

pytestmark = pytest.mark.django_db


def run(name: str, *args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(name, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def exports() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=AuditAction.AUDIT_EXPORTED))


@pytest.fixture(autouse=True)
def _host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export_audit, "_os_user", lambda: "siem")
    monkeypatch.setattr(export_audit.socket, "gethostname", lambda: "cron-1")


class TestExportAudit:
    def test_jsonl_to_stdout_filtered_and_audited(self) -> None:
        add_entries(3, at=T0, resource_slug="db")
        add_entry(
            at=T0, actor_label="zoë@example.com", resource_slug="web", details={"note": "Zoë 🚀"}
        )
        out, err = run(
            "export_audit",
            "--format",
            "jsonl",
            "--resource",
            "web",
            "--since",
            "2026-11-01",
            "--until",
            "2026-11-01",
        )
        (line,) = [json.loads(x) for x in out.splitlines()]
        assert (line["actor_label"], line["details"]) == ("zoë@example.com", {"note": "Zoë 🚀"})
        assert err == ""
        (event,) = exports()
        assert (event.actor_label, event.actor_id) == ("system", None)
        assert event.details == {
            "format": "jsonl",
            "filters": {
                "since": "2026-11-01T00:00:00.000000+00:00",
                "until": "2026-11-02T00:00:00.000000+00:00",
                "actor": None,
                "resource": "web",
                "action": None,
            },
            "via": "command",
            "output": "stdout",
            "os_user": "siem",
            "host": "cron-1",
        }

    def test_csv_to_a_file(self, tmp_path: Path) -> None:
        add_entry(at=T0, actor_label="+alice@example.com")
        target = tmp_path / "trail.csv"
        out, _ = run(
            "export_audit", "--format", "csv", "--actor", "+ALICE@example.com", "-o", str(target)
        )
        assert out == ""
        data = target.read_bytes()
        assert data.startswith(b"\xef\xbb\xbfseq,created_at,")
        assert b",'+alice@example.com," in data
        assert data.count(b"\r\n") == 2
        assert exports()[0].details["output"] == str(target)

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["--format", "xml"], "--format 'xml': use csv or jsonl"),
            ([], "--format is required: csv or jsonl"),
            (["--format", "csv", "--since", "last week"], "--since: 'last week' is not an ISO"),
            (["--format", "csv", "--until", "2026-02-30"], "--until: '2026-02-30' is not"),
            (
                ["--format", "csv", "--since", "2026-11-02", "--until", "2026-11-01"],
                "until must be later than since",
            ),
            (["--format", "csv", "--action", "grant.bogus"], "--action 'grant.bogus' is not"),
            (["--format", "csv", "--resource", "a b"], "--resource 'a b' is not a slug"),
            (
                ["--format", "csv", "-o", "/nonexistent-dir/x.csv"],
                "cannot write /nonexistent-dir/x.csv: No such file or directory",
            ),
            (["--format", "csv", "--bogus"], "unrecognized arguments: --bogus"),
            # Access reports are their own command now (manage.py access_report).
            (["--format", "csv", "--at", "2026-11-01"], "unrecognized arguments: --at"),
            (["--report", "access"], "unrecognized arguments: --report"),
        ],
    )
    def test_bad_arguments_exit_2_with_one_line(self, args: list[str], message: str) -> None:
        with pytest.raises(CommandError) as caught:
            run("export_audit", *args)
        assert caught.value.returncode == 2
        assert message in str(caught.value)
        assert "\n" not in str(caught.value)
        assert AuditEvent.objects.count() == 0  # nothing written, nothing audited


class TestVerifyAudit:
    def test_intact_database(self) -> None:
        events = add_entries(4, at=T0)
        out, _ = run("verify_audit")
        assert out == f"audit chain intact: 4 entries, head {events[-1].hash}\n"

    def test_tampered_database_exits_1(self, raw_sql: Any) -> None:
        add_entries(4, at=T0)
        raw_sql("UPDATE audit_auditevent SET details = %s WHERE seq = 2", ['{"n": 99}'])
        err = io.StringIO()
        with pytest.raises(SystemExit) as caught:
            call_command("verify_audit", stdout=io.StringIO(), stderr=err)
        assert caught.value.code == 1
        assert err.getvalue() == (
            "audit chain broken at entry #2: altered (its hash does not match its content)\n"
        )

    @pytest.mark.parametrize("fmt", ["jsonl", "csv"])
    def test_an_export_file_verifies_and_a_tampered_one_does_not(
        self, fmt: str, tmp_path: Path
    ) -> None:
        add_entries(3, at=T0, details={"note": "=Zoë 🚀"})
        path = tmp_path / f"all.{fmt}"
        run("export_audit", "--format", fmt, "-o", str(path))
        head = AuditEvent.objects.order_by("-seq").first()
        assert head is not None and head.action == "audit.exported"
        out, _ = run("verify_audit", "--file", str(path))
        assert out == f"audit chain intact: 4 entries, head {head.hash}\n"

        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace("user1@example.com", "user9@example.com"), encoding="utf-8")
        err = io.StringIO()
        with pytest.raises(SystemExit) as caught:
            call_command("verify_audit", "--file", str(path), stdout=io.StringIO(), stderr=err)
        assert caught.value.code == 1
        assert err.getvalue().startswith("audit chain broken at entry #2: altered")

    def test_filtered_export_rows_only_and_segment(self, tmp_path: Path) -> None:
        add_entries(4, at=T0)
        filtered = tmp_path / "one.jsonl"
        run(
            "export_audit", "--format", "jsonl", "--actor", "user2@example.com", "-o", str(filtered)
        )
        with pytest.raises(SystemExit):
            call_command("verify_audit", "--file", str(filtered), stderr=io.StringIO())
        out, _ = run("verify_audit", "--file", str(filtered), "--rows-only")
        assert out.startswith("audit export rows intact: 1 entries")

        segment = tmp_path / "tail.jsonl"
        run("export_audit", "--format", "jsonl", "-o", str(segment))
        tail = segment.read_text().splitlines()[2:]  # entries #3.. as if exported --since
        segment.write_text("\n".join(tail) + "\n")
        out, _ = run("verify_audit", "--file", str(segment), "--segment")
        assert out.startswith("audit chain segment intact: entries #3 to #6 (4 entries) after ")
        with pytest.raises(SystemExit):  # without --segment it must start at #1
            call_command("verify_audit", "--file", str(segment), stderr=io.StringIO())

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["--rows-only"], "--rows-only and --segment need --file"),
            (["--file", "/nonexistent/x.jsonl"], "cannot read /nonexistent/x.jsonl"),
            (["--file", "export.xlsx"], "expected a .jsonl or .csv export"),
        ],
    )
    def test_bad_arguments_exit_2(self, args: list[str], message: str) -> None:
        with pytest.raises(CommandError, match=message) as caught:
            run("verify_audit", *args)
        assert caught.value.returncode == 2

    def test_garbage_in_a_file_exits_1_naming_the_line(self, tmp_path: Path) -> None:
        path = tmp_path / "x.jsonl"
        path.write_text('{"seq": 1}\n')
        err = io.StringIO()
        with pytest.raises(SystemExit) as caught:
            call_command("verify_audit", "--file", str(path), stderr=err)
        assert caught.value.code == 1
        assert err.getvalue().startswith("audit export unreadable at line 1: missing created_at")


@pytest.mark.parametrize(
    ("args", "code", "line"),
    [
        (["export_audit", "--format", "xml"], 2, "CommandError: --format 'xml': use csv or jsonl"),
        (
            ["export_audit", "--nope"],
            2,
            "manage.py export_audit: error: unrecognized arguments: --nope (see --help)",
        ),
    ],
)
def test_from_the_shell_one_line_on_stderr(args: list[str], code: int, line: str) -> None:
    env = {**os.environ, "DEBUG": "true", "DATABASE_URL": "sqlite:///:memory:"}
    done = run_manage(*args, env=env, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (code, "", line + "\n")
