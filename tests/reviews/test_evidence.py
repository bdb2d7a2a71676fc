"""The evidence pack of a closed campaign verifies offline: with ``verify_audit --file`` and
with the pack's own ``verify.py`` (standard library only, in a fresh interpreter)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import subprocess
import sys
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.core.management import call_command

from apps.access.models import Resource
from apps.audit.models import AuditEvent
from apps.reviews import evidence, services
from apps.reviews.actions import ReviewAction
from apps.reviews.models import Campaign, ItemKind
from tests.audit.conftest import add_entry
from tests.reviews.conftest import NOW

pytestmark = pytest.mark.django_db


def reviewed(
    owner: Any, reviewer: Any, *, at: Any = NOW, remove: str = ItemKind.AUTO_APPROVE_RULE
) -> Campaign:
    """A campaign opened, partly decided (one keep, one remove) and closed."""
    with time_machine.travel(at, tick=False):
        campaign = services.open_campaign(
            owner=owner,
            actor=owner,
            name="Q4 review",
            due_at=at + timedelta(days=14),
            long_grant_minutes=240,
        )
        items = campaign.items
        services.decide_item(
            items.get(kind=ItemKind.BREAK_GLASS_GROUP),
            reviewer=reviewer,
            decision="keep",
            comment="needed",
        )
        services.decide_item(
            items.filter(kind=remove).first(),
            reviewer=reviewer,
            decision="remove",
            comment="no more auto-approval",
        )
    with time_machine.travel(at + timedelta(days=15), tick=False):
        return services.close_campaign(campaign, actor=owner)


def unpack(campaign: Campaign, folder: Path) -> dict[str, bytes]:
    data = b"".join(evidence.pack(campaign))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        archive.extractall(folder)
        return {name: archive.read(name) for name in archive.namelist()}


def run_verify_py(folder: Path) -> subprocess.CompletedProcess[str]:
    """The pack's own verify.py, in a fresh interpreter with nothing of the portal."""
    return subprocess.run(
        [sys.executable, "-I", "verify.py"], cwd=folder, capture_output=True, text=True, check=False
    )


def verify_audit(*args: str) -> str:
    out = io.StringIO()
    call_command("verify_audit", *args, stdout=out)
    return out.getvalue()


def test_the_pack_verifies_offline(grafana: Resource, carol: Any, bob: Any, tmp_path: Path) -> None:
    campaign = reviewed(carol, bob)

    files = unpack(campaign, tmp_path)

    assert sorted(files) == [
        "README.txt",
        "audit.jsonl",
        "campaign.json",
        "items.csv",
        "manifest.sha256",
        "verify.py",
    ]
    closing = AuditEvent.objects.get(action=ReviewAction.CAMPAIGN_CLOSED)
    # The trail segment starts at entry #1 here (the period reaches back past it).
    assert f"intact: {closing.seq} entries, head {closing.hash}" in verify_audit(
        "--file", str(tmp_path / "audit.jsonl")
    )
    run = run_verify_py(tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"pack intact: entries #1 to #{closing.seq}, head {closing.hash}"
    for line in files["manifest.sha256"].decode().splitlines():
        digest, name = line.split("  ")
        assert hashlib.sha256(files[name]).hexdigest() == digest
    meta = json.loads(files["campaign.json"])
    assert meta["chain"]["head_hash"] == closing.hash and meta["chain"]["last_seq"] == closing.seq
    assert (meta["items"], meta["kept"], meta["removed"], meta["undecided"]) == (9, 1, 1, 7)
    assert closing.hash in files["README.txt"].decode()


def test_items_csv_holds_every_item_decision_and_reviewer_from_the_trail(
    grafana: Resource, carol: Any, bob: Any, tmp_path: Path
) -> None:
    campaign = reviewed(carol, bob)
    # Bob is renamed afterwards; the pack names him as the trail recorded him.
    bob.email = "robert@example.com"
    bob.save()

    files = unpack(campaign, tmp_path)

    rows = list(csv.DictReader(io.StringIO(files["items.csv"].decode("utf-8-sig"))))
    assert len(rows) == 9
    removed = next(r for r in rows if r["decision"] == "remove")
    assert (
        removed["kind"] == ItemKind.AUTO_APPROVE_RULE and removed["decided_by"] == "bob@example.com"
    )
    assert removed["comment"] == "no more auto-approval"
    assert removed["outcome"] == "removed from auto_approve_rules"
    undecided = [r for r in rows if not r["decision"]]
    assert len(undecided) == 7 and {r["overdue"] for r in undecided} == {"yes"}
    assert {r["reviewers"] for r in rows} >= {"approvers", "superusers"}


def test_a_later_pack_is_a_segment_anchored_mid_chain(
    grafana: Resource, carol: Any, bob: Any, tmp_path: Path
) -> None:
    add_entry(at=NOW - timedelta(days=1))  # before the first review's period
    reviewed(carol, bob)
    later = reviewed(carol, bob, at=NOW + timedelta(days=90), remove=ItemKind.REQUESTER_GROUP)

    files = unpack(later, tmp_path)

    first = json.loads(files["audit.jsonl"].splitlines()[0])
    assert first["seq"] > 1
    assert "--segment" in files["README.txt"].decode()
    assert "segment intact" in verify_audit("--file", str(tmp_path / "audit.jsonl"), "--segment")
    run = run_verify_py(tmp_path)
    assert run.returncode == 0, run.stderr


def test_a_tampered_pack_fails_its_checks(
    grafana: Resource, carol: Any, bob: Any, tmp_path: Path
) -> None:
    campaign = reviewed(carol, bob)
    unpack(campaign, tmp_path)
    path = tmp_path / "audit.jsonl"
    path.write_text(path.read_text().replace('"decision":"remove"', '"decision":"keep"'))

    run = run_verify_py(tmp_path)

    assert run.returncode != 0 and "audit.jsonl was changed" in run.stderr


def test_the_pack_is_the_same_every_time(grafana: Resource, carol: Any, bob: Any) -> None:
    campaign = reviewed(carol, bob)
    first = b"".join(evidence.pack(campaign))
    AuditEvent.objects.count()  # later entries do not change the pack
    assert b"".join(evidence.pack(campaign)) == first


def test_an_open_campaign_has_no_pack(grafana: Resource, carol: Any) -> None:
    with time_machine.travel(NOW, tick=False):
        campaign = services.open_campaign(owner=carol, name="x", due_at=NOW + timedelta(days=1))
    with pytest.raises(ValueError, match="closed"):
        next(evidence.pack(campaign))
