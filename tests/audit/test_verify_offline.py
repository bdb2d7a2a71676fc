"""An auditor checks an export anywhere: ``verify_audit --file`` needs no production settings."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from django.core.management import call_command

from apps.audit.models import AuditEvent
from tests.support.processes import run_manage

from .conftest import T0, add_entries

pytestmark = pytest.mark.django_db


def bare_env() -> dict[str, str]:
    """No DEBUG, no SECRET_KEY, no database, no Pomerium: only a shell's basics."""
    return {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}


def test_an_export_verifies_without_production_settings(tmp_path: Path) -> None:
    add_entries(3, at=T0)
    path = tmp_path / "trail.csv"
    call_command("export_audit", "--format", "csv", "-o", str(path), stdout=io.StringIO())
    head = AuditEvent.objects.order_by("-seq").first()
    assert head is not None

    checked = run_manage("verify_audit", "--file", str(path), env=bare_env())
    refused = run_manage("verify_audit", env=bare_env())  # the database's chain: production
    started = run_manage("check", env=bare_env())

    assert checked.returncode == 0, checked.stderr
    assert checked.stdout == f"audit chain intact: 4 entries, head {head.hash}\n"
    assert "SECRET_KEY" not in checked.stderr
    for other in (refused, started):
        assert other.returncode == 3
        assert other.stderr.startswith("jitportal refuses to start: ")
