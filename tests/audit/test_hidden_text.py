"""The audit trail's exports keep hidden and direction-changing characters exactly (they are
evidence: every row must re-verify), class by class, and ``verify_audit --file`` names the
entries that carry them, since a spreadsheet would show them as stored."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command

from apps.audit.models import AuditEvent
from tests.support.hidden_text import CLASS_IDS, CLASSES, spoof

from .conftest import T0, add_entries, add_entry

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
@pytest.mark.parametrize("name", CLASS_IDS)
def test_exports_keep_them_exactly_and_verify_names_the_entries(
    tmp_path: Path, fmt: str, name: str
) -> None:
    chars = CLASSES[name]
    add_entries(2, at=T0)
    marked = add_entry(at=T0, actor_label=f"Mallory {chars}", details={"reason": spoof(chars)})
    path = tmp_path / f"trail.{fmt}"
    call_command("export_audit", "--format", fmt, "-o", str(path), stdout=io.StringIO())

    text = path.read_text(encoding="utf-8-sig")
    if fmt == "jsonl":
        # Lines end in "\n" only (str.splitlines would also split at U+2028 and NEL).
        rows = [json.loads(line) for line in text.split("\n") if line]
        row = next(r for r in rows if r["seq"] == marked.seq)
        assert (row["actor_label"], row["details"]["reason"]) == (
            f"Mallory {chars}",
            spoof(chars),
        )
    else:
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
        row = next(r for r in rows if r["seq"] == str(marked.seq))
        assert row["actor_label"] == f"Mallory {chars}"
        assert json.loads(row["details"])["reason"] == spoof(chars)

    out = io.StringIO()
    call_command("verify_audit", "--file", str(path), stdout=out)
    head = AuditEvent.objects.order_by("-seq").first()
    assert head is not None
    assert out.getvalue() == (
        f"audit chain intact: 4 entries, head {head.hash}\n"
        f"note: 1 entries carry hidden or direction-changing characters (#{marked.seq}); the "
        "file keeps them exactly, so a spreadsheet shows them as stored. The admin's audit "
        "pages show them escaped, as [U+202E].\n"
    )
