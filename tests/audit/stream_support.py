"""Fixtures of the audit stream tests: real receivers (devtools.siem), a test CA, and the
stream's settings pointed at them. Test modules import the fixtures they use."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from devtools.siem import HttpReceiver, SyslogReceiver
from tests.support.tls import LocalCA, make_ca

TOKEN = "siem-test-token"


@pytest.fixture(scope="session")
def local_ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCA:
    return make_ca(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
    with HttpReceiver(token=TOKEN) as receiver:
        yield receiver


@pytest.fixture
def https_receiver(local_ca: LocalCA) -> Iterator[HttpReceiver]:
    with HttpReceiver(token=TOKEN, tls=local_ca.server_context()) as receiver:
        yield receiver


@pytest.fixture
def syslog_receiver() -> Iterator[SyslogReceiver]:
    with SyslogReceiver() as receiver:
        yield receiver


@pytest.fixture
def tls_syslog_receiver(local_ca: LocalCA) -> Iterator[SyslogReceiver]:
    with SyslogReceiver(tls=local_ca.server_context()) as receiver:
        yield receiver


@pytest.fixture
def stream_to(settings: Any, local_ca: LocalCA) -> Any:
    """``stream_to(receiver, ...)``: AUDIT_STREAM names those receivers (fast retries)."""

    def configure(*receivers: Any, batch: int = 2000) -> None:
        settings.AUDIT_STREAM = [r.url for r in receivers]
        settings.AUDIT_STREAM_TOKEN = TOKEN
        settings.AUDIT_STREAM_AUTH_SCHEME = "Bearer"
        settings.AUDIT_STREAM_CA_FILE = str(local_ca.ca_file)
        settings.AUDIT_STREAM_BATCH = batch
        settings.AUDIT_STREAM_BATCH_BYTES = 2 * 1024 * 1024
        settings.AUDIT_STREAM_TIMEOUT_SECONDS = 5.0
        settings.AUDIT_STREAM_RETRY_BASE_SECONDS = 1.0
        settings.AUDIT_STREAM_RETRY_MAX_SECONDS = 60.0
        settings.AUDIT_STREAM_ALERT_AFTER_SECONDS = 3600
        settings.PORTAL_URL = "https://jit.example.com"

    return configure


def export_lines(tmp_path: Path) -> list[bytes]:
    """What ``export_audit --format jsonl`` writes, line by line (it audits itself first)."""
    path = tmp_path / "export.jsonl"
    call_command("export_audit", "--format", "jsonl", "-o", str(path))
    return path.read_bytes().splitlines()


def verify_file(path: Path) -> str:
    out = io.StringIO()
    call_command("verify_audit", "--file", str(path), stdout=out)
    return out.getvalue()
