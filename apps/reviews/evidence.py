"""The evidence pack of a closed campaign: one ZIP an auditor can verify offline.

Members (docs/access-reviews.md):

* ``README.txt``: what is in the pack and how to verify it, with and without jitportal;
* ``campaign.json``: the campaign (scope, owner, dates, counts) and the chain's head;
* ``items.csv``: every item, its reviewers, decision, comment, who decided (as the
  trail names them) and what a removal changed; spreadsheet-safe like the export;
* ``audit.jsonl``: every audit entry from the period's start to the entry that closed
  the campaign, exactly as ``export_audit --format jsonl`` writes them: a contiguous
  segment of the chain whose last entry is ``review.campaign_closed``;
* ``verify.py``: the offline check (standard library only);
* ``manifest.sha256``: the SHA-256 of every other member (``sha256sum -c``).

The pack is built from the database on each download and is the same every time: the
segment ends at the closing entry, and every member carries the closing time. It streams
(the trail segment may be long); the download is audited as an export (``audit.exported``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from apps.audit import export
from apps.audit.models import AuditEvent

from .actions import ReviewAction
from .models import Campaign, Decision, ReviewItem
from .names import deciders

ITEM_COLUMNS = (
    "item",
    "resource",
    "resource_name",
    "kind",
    "fact",
    "reviewers",
    "decision",
    "comment",
    "decided_by",
    "decided_at",
    "outcome",
    "overdue",
)

README = """\
Evidence pack of the access review "{name}" (campaign {pk})
{rule}

Opened {opened} by {owner}, due {due}, closed {closed}.
Scope: {scope}. Items: {items} ({kept} kept, {removed} removed, {undecided} not decided).

Files
  campaign.json    the campaign, its counts, and the audit chain's head at closing
  items.csv        every item: the fact, its reviewers, the decision, the comment,
                   who decided (as the audit trail names them) and what a removal changed
  audit.jsonl      audit entries #{first} to #{last}: every entry from the review
                   period's start ({period}) to the entry that closed the campaign, as
                   jitportal's JSON Lines export writes them
  verify.py        the offline check below, standard library only
  manifest.sha256  SHA-256 of every other file

How to verify (offline)
  1. The files are what was packed:
         sha256sum -c manifest.sha256
  2. The audit entries form an unbroken hash chain. Each line's "hash" is the SHA-256
     of the line's other values as canonical JSON (keys sorted, separators "," and ":",
     non-ASCII kept, "upstream_request_id" left out when empty), and each "prev_hash"
     is the hash of the line before. With jitportal:
         manage.py verify_audit --file audit.jsonl{segment_flag}
     Without it:
         python3 verify.py
     Both print the head hash. It must be
         {head}
     (entry #{last}, the campaign's closing). Compare it with a copy kept apart from
     this portal: your SIEM's copy of the audit stream holds the same entry with the
     same hash; so does any later export of the trail.
  3. Every decision in items.csv has its own entry in audit.jsonl (action
     "review.item_decided", target_id = the item), and every removal the entries
     of the change it made (resource.changed, grant.revoked). verify.py checks the
     decisions.
"""

VERIFY = '''\
"""Offline check of a jitportal evidence pack: run it in the unzipped folder."""
import csv, hashlib, json, sys

for line in open("manifest.sha256", encoding="utf-8"):
    digest, name = line.rstrip("\\n").split("  ", 1)
    with open(name, "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == digest, f"{name} was changed"
pack = json.load(open("campaign.json", encoding="utf-8"))
prev, seq, decided = pack["chain"]["anchor_prev_hash"], pack["chain"]["first_seq"] - 1, {}
for line in open("audit.jsonl", encoding="utf-8"):
    e = json.loads(line)
    h = e.pop("hash")
    if not e.get("upstream_request_id"):
        e.pop("upstream_request_id", None)
    canon = json.dumps(e, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert hashlib.sha256(canon.encode()).hexdigest() == h, f"entry #{e['seq']} altered"
    assert e["seq"] == seq + 1 and e["prev_hash"] == prev, f"chain broken at #{e['seq']}"
    if e["action"] == "review.item_decided" and e["target_type"] == "reviews.reviewitem":
        decided[e["target_id"]] = e["details"]["decision"]
    prev, seq = h, e["seq"]
assert prev == pack["chain"]["head_hash"] and seq == pack["chain"]["last_seq"], "head differs"
for row in csv.DictReader(open("items.csv", encoding="utf-8-sig", newline="")):
    if row["decision"]:
        assert decided.get(row["item"]) == row["decision"], f"item {row['item']}: no entry"
print(f"pack intact: entries #{pack['chain']['first_seq']} to #{seq}, head {prev}")
'''


class _Sink:
    """A write-only file for ``zipfile`` whose bytes are taken as they come (streaming)."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def write(self, data: bytes) -> int:
        self.buffer += data
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> bytes:
        data = bytes(self.buffer)
        self.buffer.clear()
        return data


@dataclass(frozen=True)
class Segment:
    first_seq: int
    last_seq: int
    anchor_prev_hash: str
    head_hash: str


def segment(campaign: Campaign) -> Segment:
    """The trail from the period's start to the entry that closed ``campaign``."""
    closing = AuditEvent.objects.get(
        action=ReviewAction.CAMPAIGN_CLOSED,
        target_type="reviews.campaign",
        target_id=str(campaign.pk),
    )
    first = (
        AuditEvent.objects.filter(created_at__gte=campaign.period_start, seq__lte=closing.seq)
        .order_by("seq")
        .values_list("seq", "prev_hash")
        .first()
    )
    assert first is not None  # the closing entry itself is in the period
    return Segment(first[0], closing.seq, first[1], closing.hash)


def _counts(items: list[ReviewItem]) -> dict[str, int]:
    decisions = [i.decision for i in items]
    return {
        "items": len(items),
        "kept": decisions.count(Decision.KEEP),
        "removed": decisions.count(Decision.REMOVE),
        "undecided": decisions.count(""),
    }


def _campaign_json(campaign: Campaign, items: list[ReviewItem], seg: Segment) -> bytes:
    data: dict[str, Any] = {
        "campaign": campaign.pk,
        "name": campaign.name,
        "owner": _owner(campaign),
        "resources": "all" if campaign.all_resources else sorted({i.resource_slug for i in items}),
        "reviewer_group": campaign.reviewer_group or None,
        "long_grant_minutes": campaign.long_grant_minutes,
        "period_start": campaign.period_start.isoformat(),
        "opened_at": campaign.opened_at.isoformat(),
        "due_at": campaign.due_at.isoformat(),
        "closed_at": campaign.closed_at.isoformat() if campaign.closed_at else None,
        **_counts(items),
        "chain": {
            "first_seq": seg.first_seq,
            "last_seq": seg.last_seq,
            "anchor_prev_hash": seg.anchor_prev_hash,
            "head_hash": seg.head_hash,
        },
    }
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode()


def _owner(campaign: Campaign) -> str:
    """The owner as the opening entry names them."""
    opened = (
        AuditEvent.objects.filter(
            action=ReviewAction.CAMPAIGN_OPENED,
            target_type="reviews.campaign",
            target_id=str(campaign.pk),
        )
        .values_list("details", flat=True)
        .first()
    )
    return str((opened or {}).get("owner") or campaign.owner.email)


def _items_csv(campaign: Campaign, items: list[ReviewItem]) -> bytes:
    names = deciders([i.pk for i in items])
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(ITEM_COLUMNS)
    for item in items:
        overdue = not item.decision and campaign.closed_at and campaign.due_at <= campaign.closed_at
        cells = [
            str(item.pk),
            item.resource_slug,
            item.resource_name,
            item.kind,
            item.summary,
            ", ".join(item.reviewer_groups) or "superusers",
            item.decision,
            item.comment,
            names.get(item.pk, ""),
            item.decided_at.isoformat() if item.decided_at else "",
            item.outcome,
            "yes" if overdue else "no",
        ]
        writer.writerow([export.neutralise(c) for c in cells])
    return buffer.getvalue().encode("utf-8")


def _members(campaign: Campaign, seg: Segment) -> Iterator[tuple[str, Iterable[bytes]]]:
    items = list(campaign.items.order_by("resource_slug", "kind", "pk"))
    counts = _counts(items)
    readme = README.format(
        name=campaign.name,
        pk=campaign.pk,
        rule="=" * 72,
        opened=campaign.opened_at.isoformat(),
        owner=_owner(campaign),
        due=campaign.due_at.isoformat(),
        closed=campaign.closed_at.isoformat() if campaign.closed_at else "",
        scope="every active resource" if campaign.all_resources else "the chosen resources",
        period=campaign.period_start.isoformat(),
        first=seg.first_seq,
        last=seg.last_seq,
        head=seg.head_hash,
        segment_flag="" if seg.first_seq == 1 else " --segment",
        **counts,
    )
    yield "README.txt", [readme.encode()]
    yield "campaign.json", [_campaign_json(campaign, items, seg)]
    yield "items.csv", [_items_csv(campaign, items)]
    entries = AuditEvent.objects.filter(seq__gte=seg.first_seq, seq__lte=seg.last_seq)
    yield "audit.jsonl", export.encoded(export.chunks(export.entries(entries), "jsonl"))
    yield "verify.py", [VERIFY.encode()]


def pack_name(campaign: Campaign) -> str:
    return f"access-review-{campaign.pk}-evidence.zip"


def pack(campaign: Campaign) -> Iterator[bytes]:
    """The ZIP, in pieces. ``campaign`` must be closed."""
    if campaign.closed_at is None:
        raise ValueError("only a closed campaign has an evidence pack")
    seg = segment(campaign)
    stamp = campaign.closed_at.utctimetuple()[:6]
    sink = _Sink()
    digests: list[str] = []
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, pieces in _members(campaign, seg):
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            digest = hashlib.sha256()
            with archive.open(info, "w", force_zip64=name == "audit.jsonl") as member:
                for piece in pieces:
                    member.write(piece)
                    digest.update(piece)
                    if len(sink.buffer) >= export.BUFFER_BYTES:
                        yield sink.take()
            digests.append(f"{digest.hexdigest()}  {name}\n")
        info = zipfile.ZipInfo("manifest.sha256", date_time=stamp)
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, "".join(digests))
    yield sink.take()
