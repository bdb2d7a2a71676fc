"""Canonical content, hashing and verification of the audit chain.

The canonical form is documented in README.md ("Verifying the audit trail") so an
auditor can re-verify an export without this code:

    canonical = JSON of the fields in CHAINED_FIELDS, keys sorted, separators (",", ":"),
                UTF-8, no ASCII escaping; created_at as ISO 8601 UTC with microseconds
                ("2026-11-23T10:07:00.123456+00:00"); actor_id as a string or null.
    hash      = lowercase hex SHA-256 of canonical
    entry n is intact when its hash matches and prev_hash equals entry n-1's hash
    (entry 1's prev_hash is GENESIS), and seq runs 1, 2, 3, ... without gaps.
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


def format_time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def canonical(entry: Mapping[str, Any]) -> bytes:
    """The bytes that are hashed, from a mapping holding every CHAINED_FIELDS key."""
    data = {name: entry[name] for name in CHAINED_FIELDS}
    if isinstance(data["created_at"], datetime):
        data["created_at"] = format_time(data["created_at"])
    data["actor_id"] = None if data["actor_id"] in (None, "") else str(data["actor_id"])
    data["seq"] = int(data["seq"])
    data["ip"] = data["ip"] or None
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(entry: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(entry)).hexdigest()


@dataclass(frozen=True)
class VerifyResult:
    count: int
    ok: bool
    broken_seq: int | None = None
    problem: str = ""


def verify(entries: Iterable[Mapping[str, Any]]) -> VerifyResult:
    """Walk entries in seq order; stop at the first one that does not fit the chain."""
    expected_prev = GENESIS
    expected_seq = 1
    count = 0
    for entry in entries:
        seq = int(entry["seq"])
        if seq != expected_seq:
            what = "missing" if seq > expected_seq else "duplicated or out of order"
            return VerifyResult(count, False, seq, f"entry #{expected_seq} is {what} (found #{seq})")
        if entry["prev_hash"] != expected_prev:
            return VerifyResult(
                count, False, seq, f"entry #{seq} does not follow entry #{seq - 1} (prev_hash differs)"
            )
        if entry_hash(entry) != entry["hash"]:
            return VerifyResult(count, False, seq, f"entry #{seq} was altered (hash differs)")
        expected_prev = entry["hash"]
        expected_seq += 1
        count += 1
    return VerifyResult(count, True)
