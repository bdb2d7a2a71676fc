"""Canonical content, hashing and verification of the audit chain.

The canonical form is documented in docs/audit.md ("Verifying an export offline") so an
auditor can re-verify an export without this code:

    canonical = JSON of the fields in CHAINED_FIELDS, keys sorted, separators (",", ":"),
                UTF-8, no ASCII escaping; created_at as ISO 8601 UTC with microseconds
                ("2026-11-23T10:07:00.123456+00:00"); actor_id as a string or null;
                ip as a string or null.
    hash      = lowercase hex SHA-256 of canonical
    upstream_request_id (a trusted proxy's own request id) is hashed only when it is not
    empty, so entries written before it existed keep their hashes.
    entry n is intact when its hash matches and prev_hash equals entry n-1's hash
    (entry 1's prev_hash is GENESIS), and seq runs 1, 2, 3, ... without gaps.

A JSON Lines export holds exactly these values (plus ``hash``), so for every line
``sha256(canonical(line without "hash")) == line["hash"]``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64

CHAINED_FIELDS = (
    "seq",
    "created_at",
    "actor_id",
    "actor_label",
    "action",
    "target_type",
    "target_id",
    "target_repr",
    "resource_slug",
    "request_id",
    "ip",
    "user_agent",
    "assertion_jti",
    "assertion_sid",
    "details",
    "prev_hash",
)


# Chained when present and not empty (added later; absent from older entries and exports).
OPTIONAL_CHAINED_FIELDS = ("upstream_request_id",)


def format_time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def canonical_values(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The CHAINED_FIELDS of ``entry`` normalised to the values that are hashed."""
    data = {name: entry[name] for name in CHAINED_FIELDS}
    if isinstance(data["created_at"], datetime):
        data["created_at"] = format_time(data["created_at"])
    data["actor_id"] = None if data["actor_id"] in (None, "") else str(data["actor_id"])
    data["seq"] = int(data["seq"])
    data["ip"] = data["ip"] or None
    for name in OPTIONAL_CHAINED_FIELDS:
        if entry.get(name):
            data[name] = entry[name]
    return data


def dumps(value: Any) -> str:
    """Canonical JSON text: keys sorted, no spaces, non-ASCII kept as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical(entry: Mapping[str, Any]) -> bytes:
    """The bytes that are hashed, from a mapping holding every CHAINED_FIELDS key."""
    return dumps(canonical_values(entry)).encode()


def entry_hash(entry: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(entry)).hexdigest()


_TEXT_DIFFERS = "altered (its stored details text differs from its details)"


def text_differs(entry: Mapping[str, Any]) -> bool:
    """A database row also stores its canonical details text (what exports stream): it must
    be exactly ``dumps(details)``. Rows read from an export file carry no such key."""
    return "details_text" in entry and entry["details_text"] != dumps(entry["details"])


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of a walk. ``count`` entries were intact before ``broken_seq`` (if any);
    ``head`` is the hash of the last intact entry (GENESIS or the anchor when none)."""

    count: int
    ok: bool
    broken_seq: int | None = None
    problem: str = ""
    head: str = GENESIS
    first_seq: int = 1


def verify(
    entries: Iterable[Mapping[str, Any]], *, first_seq: int = 1, first_prev: str = GENESIS
) -> VerifyResult:
    """Walk entries in seq order; stop at the first one that does not fit the chain.

    By default the walk starts at the genesis entry #1. ``first_seq``/``first_prev`` anchor
    it elsewhere, to check a contiguous segment (e.g. an export that starts mid-chain).
    ``problem`` describes the broken entry without repeating its number.
    """
    expected_prev = first_prev
    expected_seq = first_seq
    count = 0

    def broken(seq: int, problem: str) -> VerifyResult:
        return VerifyResult(count, False, seq, problem, expected_prev, first_seq)

    for entry in entries:
        seq = int(entry["seq"])
        if seq > expected_seq:
            return broken(expected_seq, f"missing (the next entry present is #{seq})")
        if seq < expected_seq:
            return broken(seq, f"duplicate or out of order (expected #{expected_seq})")
        if entry["prev_hash"] != expected_prev:
            what = "the chain's start" if seq == first_seq else f"entry #{seq - 1}"
            return broken(
                seq,
                f"does not follow {what} (prev_hash differs: an entry before it "
                "was inserted, removed or replaced)",
            )
        if entry_hash(entry) != entry["hash"]:
            return broken(seq, "altered (its hash does not match its content)")
        if text_differs(entry):
            return broken(seq, _TEXT_DIFFERS)
        expected_prev = entry["hash"]
        expected_seq += 1
        count += 1
    return VerifyResult(count, True, head=expected_prev, first_seq=first_seq)


def verify_rows(entries: Iterable[Mapping[str, Any]]) -> VerifyResult:
    """Check each entry's own hash only: for filtered exports, which are not contiguous.

    This proves no exported row was edited after export, not that none is missing.
    """
    count = 0
    last = GENESIS
    for entry in entries:
        problem = ""
        if entry_hash(entry) != entry["hash"]:
            problem = "altered (its hash does not match its content)"
        elif text_differs(entry):
            problem = _TEXT_DIFFERS
        if problem:
            return VerifyResult(count, False, int(entry["seq"]), problem, last)
        last = entry["hash"]
        count += 1
    return VerifyResult(count, True, head=last)
