"""The stream as operators see it: the admin page, ``stream_audit``, ``check_connectivity``,
and the settings' checks (one line each; production refuses unsafe values)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from apps.audit.models import AuditEvent, StreamDestination
from apps.audit.stream import config, sender
from apps.audit.stream import destinations as audit_stream
from apps.audit.stream.actions import StreamAction
from devtools.siem import HttpReceiver, SyslogReceiver
from tests.audit.conftest import add_entries
from tests.test_settings import PRODUCTION, manage

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(*args, stdout=out, stderr=err)
    except SystemExit as exc:
        return int(exc.code or 0), out.getvalue(), err.getvalue()
    except CommandError as exc:
        return exc.returncode, out.getvalue(), str(exc)
    return 0, out.getvalue(), err.getvalue()


# --- the admin page ------------------------------------------------------------------------


def test_admin_shows_cursor_lag_and_a_bad_token_error(
    http_receiver: HttpReceiver, stream_to: Any, settings: Any, auditor: Any
) -> None:
    stream_to(http_receiver)
    add_entries(3)
    sender.pump(http_receiver.url)
    settings.AUDIT_STREAM_TOKEN = "not-the-token"
    settings.CELERY_TASK_ALWAYS_EAGER = True  # no worker: the commit hook enqueues nothing
    add_entries(2)
    sender.pump(http_receiver.url)

    page = auditor.get("/admin/audit/streamdestination/")

    assert page.status_code == 200
    text = page.content.decode()
    assert http_receiver.url in text
    assert "REFUSED" in text and "answered 401" in text
    assert "not-the-token" not in text
    row = StreamDestination.objects.get()
    detail = auditor.get(f"/admin/audit/streamdestination/{row.pk}/change/").content.decode()
    # Cursor 3; lag: the two entries after it and the stream_refused entry.
    assert ">3<" in detail and "REFUSED" in detail
    assert AuditEvent.objects.filter(action=StreamAction.REFUSED).count() == 1


def test_admin_page_is_for_auditors_and_superusers(
    http_receiver: HttpReceiver, stream_to: Any, approver: Any, superuser: Any
) -> None:
    stream_to(http_receiver)

    assert approver.get("/admin/audit/streamdestination/").status_code == 403
    assert superuser.get("/admin/audit/streamdestination/").status_code == 200


def test_send_now_clears_the_backoff_for_superusers_only(
    http_receiver: HttpReceiver, stream_to: Any, superuser: Any, auditor: Any
) -> None:
    stream_to(http_receiver)
    add_entries(1)
    http_receiver.down()
    sender.pump(http_receiver.url)
    row = StreamDestination.objects.get()
    assert row.next_attempt_at is not None
    data = {"action": "send_now", "_selected_action": [row.pk]}

    auditor.post("/admin/audit/streamdestination/", data)
    row.refresh_from_db()
    assert row.next_attempt_at is not None  # auditors have no such action

    superuser.post("/admin/audit/streamdestination/", data)
    row.refresh_from_db()
    assert row.next_attempt_at is None


# --- stream_audit ---------------------------------------------------------------------------


def test_status_lists_each_destination_and_exits_1_when_one_fails(
    http_receiver: HttpReceiver, syslog_receiver: SyslogReceiver, stream_to: Any
) -> None:
    stream_to(http_receiver, syslog_receiver)
    add_entries(4)
    sender.pump(http_receiver.url)

    code, out, _ = run("stream_audit", "--status")

    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("current") and "cursor #4 of #4" in lines[0]
    assert lines[1].startswith("sending") and "lag 4 entries" in lines[1]
    syslog_receiver.down()
    sender.pump(syslog_receiver.url)

    code, out, _ = run("stream_audit", "--status")

    assert code == 1
    assert "retrying (outage)" in out and "Connection refused" in out


def test_send_sends_now_and_reports_each_destination(
    http_receiver: HttpReceiver, syslog_receiver: SyslogReceiver, stream_to: Any
) -> None:
    stream_to(http_receiver, syslog_receiver)
    add_entries(3)
    syslog_receiver.down()

    code, out, err = run("stream_audit", "--send")

    assert code == 1 and "1 destination(s) failed" in err
    assert f"{http_receiver.url}: caught_up, 3 sent, cursor #3" in out
    assert http_receiver.seqs() == [1, 2, 3]


def test_move_cursor_resends_and_is_audited(http_receiver: HttpReceiver, stream_to: Any) -> None:
    stream_to(http_receiver)
    add_entries(5)
    sender.pump(http_receiver.url)

    code, out, _ = run("stream_audit", "--move-cursor", http_receiver.url, "--to", "2")

    assert code == 0 and "from #5 to #2" in out
    moved = AuditEvent.objects.get(action=StreamAction.CURSOR_MOVED)
    assert moved.details["from"] == 5 and moved.details["to"] == 2
    assert moved.actor_label == "system" and "os_user" in moved.details
    sender.pump(http_receiver.url)
    assert http_receiver.seqs() == [1, 2, 3, 4, 5, 3, 4, 5, 6]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--move-cursor", "https://nowhere/x", "--to", "1"), "is not in AUDIT_STREAM"),
        (("--send", "--destination", "https://nowhere/x"), "is not in AUDIT_STREAM"),
        (("--to", "3"), "--to with --move-cursor"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    http_receiver: HttpReceiver, stream_to: Any, args: tuple[str, ...], message: str
) -> None:
    stream_to(http_receiver)
    code, _, err = run("stream_audit", *args)
    assert code == 2 and message in err


def test_move_cursor_past_the_head_is_refused(http_receiver: HttpReceiver, stream_to: Any) -> None:
    stream_to(http_receiver)
    add_entries(2)
    code, _, err = run("stream_audit", "--move-cursor", http_receiver.url, "--to", "9")
    assert code == 2 and "from 0 to the head, #2" in err


# --- check_connectivity's lines -------------------------------------------------------------


def test_connectivity_proves_each_destination_with_a_repeat(
    https_receiver: HttpReceiver,
    tls_syslog_receiver: SyslogReceiver,
    stream_to: Any,
) -> None:
    from apps.audit.stream import probe

    stream_to(https_receiver, tls_syslog_receiver)
    add_entries(3)
    sender.pump(https_receiver.url)

    lines = {name: check() for name, check in probe.checks()}

    assert lines[f"Audit stream {https_receiver.url}"].startswith("took entry #3 again")
    assert "entry #1 again" in lines[f"Audit stream {tls_syslog_receiver.url}"]
    assert https_receiver.seqs() == [1, 2, 3, 3] and tls_syslog_receiver.seqs() == [1]
    assert not StreamDestination.objects.filter(cursor__gt=0).exclude(name=https_receiver.url)


def test_connectivity_fails_with_the_reason(
    http_receiver: HttpReceiver, stream_to: Any, settings: Any
) -> None:
    from apps.audit.stream import probe

    stream_to(http_receiver)
    settings.AUDIT_STREAM_TOKEN = "bad-token-here"
    add_entries(1)
    ((_, check),) = probe.checks()

    with pytest.raises(RuntimeError, match="answered 401") as caught:
        check()
    assert "bad-token-here" not in str(caught.value)


def test_connectivity_with_an_empty_trail_only_connects(
    https_receiver: HttpReceiver, stream_to: Any
) -> None:
    from apps.audit.stream import probe

    stream_to(https_receiver)
    ((_, check),) = probe.checks()
    assert check().startswith("reachable; the trail is empty")
    assert https_receiver.requests == 0


# --- settings ---------------------------------------------------------------------------------


def stream_errors(**overrides: Any) -> list[str]:
    with override_settings(**overrides):
        return [m.msg for m in run_checks() if m.id == "audit.E001"]


def test_good_stream_settings_pass(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    assert (
        stream_errors(
            AUDIT_STREAM=["https://siem.example.com/ingest", "syslog+tls://logs.example.com:6514"],
            AUDIT_STREAM_TOKEN="t",
            AUDIT_STREAM_CA_FILE=str(ca),
            DEBUG=False,
        )
        == []
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"AUDIT_STREAM": ["http://siem.example.com/x"], "DEBUG": False}, "unencrypted"),
        ({"AUDIT_STREAM": ["syslog+tcp://logs.example.com:514"], "DEBUG": False}, "syslog+tls://"),
        ({"AUDIT_STREAM": ["https://siem.example.com/x"], "AUDIT_STREAM_TOKEN": ""}, "TOKEN"),
        ({"AUDIT_STREAM_AUTH_SCHEME": "Digest"}, "AUTH_SCHEME"),
        ({"AUDIT_STREAM_CA_FILE": "/nonexistent/ca.pem"}, "not a readable file"),
        ({"AUDIT_STREAM_BATCH": 0}, "AUDIT_STREAM_BATCH must"),
        ({"AUDIT_STREAM_BATCH_BYTES": 10}, "BATCH_BYTES"),
        ({"AUDIT_STREAM_TIMEOUT_SECONDS": 0}, "TIMEOUT"),
        ({"AUDIT_STREAM_RETRY_BASE_SECONDS": 10, "AUDIT_STREAM_RETRY_MAX_SECONDS": 5}, "BASE"),
        ({"AUDIT_STREAM": ["ftp://x"]}, "is not https://"),
    ],
)
def test_each_bad_setting_is_one_line(overrides: dict[str, Any], message: str) -> None:
    base = {"AUDIT_STREAM": [], "AUDIT_STREAM_TOKEN": "t", "DEBUG": True}
    errors = stream_errors(**{**base, **overrides})
    assert len(errors) == 1 and message in errors[0] and "\n" not in errors[0]


def test_plain_destinations_on_loopback_are_fine_in_production() -> None:
    assert (
        stream_errors(
            AUDIT_STREAM=["http://127.0.0.1:8088/x", "syslog+tcp://localhost:514"],
            AUDIT_STREAM_TOKEN="t",
            DEBUG=False,
        )
        == []
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("https://user:pw@siem.example.com/", "credentials in its URL"),
        ("https://siem.example.com/x?token=abc", "looks like a credential"),
        ("syslog+tcp://logs.example.com", "needs a port"),
        ("syslog+tcp://logs.example.com:514/path", "host:port only"),
        ("https://a.example.com/x,https://a.example.com/x?channel=1", "twice"),
        ("https://a.example.com/x,,https://b.example.com/", "empty entry"),
        ("https://a.example.com:notaport/", "invalid port"),
    ],
)
def test_parse_refuses_with_one_sentence(value: str, message: str) -> None:
    with pytest.raises(audit_stream.StreamConfigError, match=message) as caught:
        audit_stream.parse(value)
    assert "abc" not in str(caught.value) and "pw" not in str(caught.value)


def test_names_are_the_url_without_the_query() -> None:
    (dest,) = audit_stream.parse(
        "https://splunk.example.com:8088/services/collector/raw?sourcetype=jitportal"
    )
    assert dest.name == "https://splunk.example.com:8088/services/collector/raw"
    assert dest.port == 8088 and dest.is_http and dest.is_tls


def test_production_refuses_to_start_with_plain_http_to_a_remote_siem() -> None:
    env = {
        **PRODUCTION,
        "AUDIT_STREAM": "http://siem.example.com/ingest",
        "AUDIT_STREAM_TOKEN": "t",
    }
    result = manage("check", env=env)
    assert result.returncode == 3
    assert result.stderr.strip().splitlines() == [
        "jitportal refuses to start: AUDIT_STREAM destination http://siem.example.com/ingest "
        "sends the trail unencrypted to a host that is not loopback; use https://."
    ]


def test_config_reads_the_settings_at_call_time(settings: Any) -> None:
    settings.AUDIT_STREAM = ["syslog+tls://logs.example.com:6514"]
    assert [d.name for d in config.destinations()] == ["syslog+tls://logs.example.com:6514"]
    settings.AUDIT_STREAM = []
    assert not config.enabled()
