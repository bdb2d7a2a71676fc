"""Exporting the audit trail: filters, the documented column order, CSV and JSON Lines.

Column order (CSV header and JSON Lines key order; stable, append-only if it ever grows):

    seq, created_at, actor_id, actor_label, action, target_type, target_id, target_repr,
    resource_slug, request_id, ip, user_agent, assertion_jti, assertion_sid, details,
    prev_hash, hash, upstream_request_id

i.e. ``chain.CHAINED_FIELDS`` followed by ``hash`` and the optional chained fields
(``upstream_request_id``: empty unless a trusted proxy sent its own id; hashed only when
not empty). Values are the canonical values that
are hashed (``chain.canonical_values``): created_at is ISO 8601 UTC with microseconds,
actor_id a string or null, ip a string or null, details a JSON object.

* JSON Lines: one JSON object per line, exactly those keys and values, UTF-8. A line minus
  its ``hash`` key, serialised canonically, hashes to ``hash``.
* CSV (RFC 4180, CRLF line ends, UTF-8 with a byte-order mark so spreadsheets read it as
  UTF-8): null is the empty cell; details is canonical JSON text (keys sorted, no spaces).
  Spreadsheet formula injection is neutralised with one rule for every cell: a value that
  starts with ``= + - @``, a tab, a carriage return, or an apostrophe gets one apostrophe
  (``'``) put in front. To get the original value back (and re-verify hashes), remove one
  leading apostrophe from every cell that starts with one. Hashes, seq and timestamps never
  start with those characters, so in practice only free-text cells are touched.

On PostgreSQL, ``chunks(entries(...), fmt)`` streams the same bytes through
``COPY (SELECT ...) TO STDOUT`` with every cell formatted in SQL (``export_copy``; inside a
JSON Lines ``details`` object the keys then come in canonical order). SQLite, and any plain
iterable of rows, go through the Python writers below.

Break-glass activations are ordinary rows with action ``grant.break_glass`` (filter on it);
no derived column is added, so the columns stay exactly the chained ones.

Every export is itself audited (``audit.exported``) *before* the first row is streamed,
and covers the matching entries up to and including that entry: a consistent cut even
while others keep writing.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db import connections
from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone

from apps.kit import instants

from . import actions, chain, export_copy
from .models import AuditAction, AuditEvent
from .services import record_now

EXPORT_COLUMNS: tuple[str, ...] = (*chain.CHAINED_FIELDS, "hash", *chain.OPTIONAL_CHAINED_FIELDS)
# Exports written before the optional fields existed.
_REQUIRED_COLUMNS: tuple[str, ...] = (*chain.CHAINED_FIELDS, "hash")

CHUNK_SIZE = 2000  # rows per database fetch
BUFFER_BYTES = 64 * 1024  # characters per streamed piece

FORMATS: dict[str, str] = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson; charset=utf-8",
}

# A spreadsheet treats cells starting with these as formulas (OWASP "CSV injection"); the
# apostrophe is included so that adding one is always reversible.
_NEUTRALISE = frozenset("=+-@\t\r'")


class ExportFileError(ValueError):
    """An export file cannot be read back: ``line`` is 1-based (the CSV header is line 1)."""

    def __init__(self, line: int, problem: str) -> None:
        super().__init__(f"line {line}: {problem}")
        self.line = line
        self.problem = problem


# --- Filters -------------------------------------------------------------------------


def parse_bound(text: str, *, end: bool) -> datetime:
    """An ISO 8601 date or date-time as an aware UTC instant.

    A date alone means the start of that day (UTC) for a lower bound and the start of the
    next day for an upper bound, so ``--until 2026-11-23`` includes all of the 23rd.
    A date-time without an offset is UTC. Raises ValueError with a readable message.
    """
    text = text.strip()
    example = "e.g. 2026-11-01 or 2026-11-01T09:30:00Z"
    try:
        day: date | None = date.fromisoformat(text)
    except ValueError:
        day = None
    try:
        if day is not None:
            start = datetime.combine(day, time.min, tzinfo=UTC)
            value = start + timedelta(days=1) if end else start
        else:
            value = datetime.fromisoformat(text)
    except (ValueError, OverflowError):
        raise ValueError(f"{text!r} is not an ISO 8601 date or date-time ({example})") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if not instants.usable(value):
        raise ValueError(f"{text!r} {instants.OUT_OF_RANGE}")
    return value.astimezone(UTC)


def _stamp(value: datetime, *, end: bool) -> str:
    value = value.astimezone(UTC)
    if value.time() == time.min:
        # Midnight is a whole-day bound; an upper bound at midnight ends the day before.
        return (value - timedelta(days=1) if end else value).date().isoformat()
    return value.strftime("%Y-%m-%dT%H%M%SZ")


@dataclass(frozen=True)
class ExportFilters:
    """Which entries to export. ``since`` is inclusive, ``until`` exclusive (UTC instants)."""

    since: datetime | None = None
    until: datetime | None = None
    actor: str = ""  # actor_label: an email (stored lower-cased) or "system"
    resource: str = ""  # resource_slug
    action: str = ""  # a registered action code (apps.audit.actions)

    def __post_init__(self) -> None:
        if self.action and not actions.is_registered(self.action):
            raise ValueError(f"unknown action {self.action!r}")
        if self.since and self.until and self.until <= self.since:
            raise ValueError("until must be later than since")

    @property
    def is_contiguous(self) -> bool:
        """No filter at all: the export is the whole chain and verifies as a chain."""
        return not (self.since or self.until or self.actor or self.resource or self.action)

    def apply(self, queryset: QuerySet[AuditEvent]) -> QuerySet[AuditEvent]:
        if self.since:
            queryset = queryset.filter(created_at__gte=self.since)
        if self.until:
            queryset = queryset.filter(created_at__lt=self.until)
        if self.actor:
            queryset = queryset.filter(actor_label=self.actor.strip().lower())
        if self.resource:
            queryset = queryset.filter(resource_slug=self.resource)
        if self.action:
            queryset = queryset.filter(action=self.action)
        return queryset

    def as_details(self) -> dict[str, str | None]:
        return {
            "since": chain.format_time(self.since) if self.since else None,
            "until": chain.format_time(self.until) if self.until else None,
            "actor": self.actor.strip().lower() or None,
            "resource": self.resource or None,
            "action": self.action or None,
        }


def filename(
    fmt: str,
    since: datetime | None,
    until: datetime | None,
    *,
    now: datetime | None = None,
    prefix: str = "audit",
) -> str:
    """``audit_2026-11-01_to_2026-11-23.csv``: whole days as dates, other instants as
    ``2026-11-23T101500Z``; an open start is ``start``, an open end is the export time."""
    first = _stamp(since, end=False) if since else "start"
    last = (
        _stamp(until, end=True) if until else (now or timezone.now()).strftime("%Y-%m-%dT%H%M%SZ")
    )
    return f"{prefix}_{first}_to_{last}.{fmt}"


# --- Reading the trail -----------------------------------------------------------------


class Entries:
    """The rows of an export: iterate for plain dicts (no model instances) in chain order,
    fetched ``CHUNK_SIZE`` at a time over a server-side cursor on PostgreSQL, so memory
    stays flat. ``chunks()`` given an ``Entries`` on PostgreSQL skips the dicts and streams
    COPY's output instead (``export_copy``); the rows are the same."""

    def __init__(self, queryset: QuerySet[AuditEvent]) -> None:
        self.queryset = queryset
        self._rows: Iterator[dict[str, Any]] | None = None

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self

    def __next__(self) -> dict[str, Any]:
        if self._rows is None:
            values = self.queryset.order_by("seq").values(*EXPORT_COLUMNS, "details_text")
            self._rows = values.iterator(chunk_size=CHUNK_SIZE)
        return next(self._rows)

    def close(self) -> None:
        """Release the server-side cursor of a walk that stops early."""
        close = getattr(self._rows, "close", None)
        if close is not None:
            close()

    @property
    def copies(self) -> bool:
        """Whether ``chunks()`` streams these rows with COPY (PostgreSQL, not yet read)."""
        return self._rows is None and connections[self.queryset.db].vendor == "postgresql"


def entries(queryset: QuerySet[AuditEvent], *, upto_seq: int | None = None) -> Entries:
    """The entries of ``queryset`` (up to and including ``upto_seq``) in chain order."""
    if upto_seq is not None:
        queryset = queryset.filter(seq__lte=upto_seq)
    return Entries(queryset)


def export_values(row: Mapping[str, Any]) -> dict[str, Any]:
    """One entry as exported: the canonical chained values plus ``hash``, in column order."""
    created = row["created_at"]
    actor_id = row["actor_id"]
    return {
        "seq": int(row["seq"]),
        "created_at": chain.format_time(created) if isinstance(created, datetime) else created,
        "actor_id": None if actor_id is None or actor_id == "" else str(actor_id),
        "actor_label": row["actor_label"],
        "action": row["action"],
        "target_type": row["target_type"],
        "target_id": row["target_id"],
        "target_repr": row["target_repr"],
        "resource_slug": row["resource_slug"],
        "request_id": row["request_id"],
        "ip": row["ip"] or None,
        "user_agent": row["user_agent"],
        "assertion_jti": row["assertion_jti"],
        "assertion_sid": row["assertion_sid"],
        "details": row["details"],
        "prev_hash": row["prev_hash"],
        "hash": row["hash"],
        "upstream_request_id": row["upstream_request_id"],
    }


# --- Writing ----------------------------------------------------------------------------


def neutralise(cell: str) -> str:
    """Make a cell inert in a spreadsheet; reversible with ``unneutralise``."""
    return "'" + cell if cell and cell[0] in _NEUTRALISE else cell


def unneutralise(cell: str) -> str:
    return cell[1:] if cell.startswith("'") else cell


def csv_cells(row: Mapping[str, Any]) -> list[str]:
    """One entry as CSV cells in EXPORT_COLUMNS order, neutralised.

    Written out field by field rather than through ``export_values``: this is the hot loop
    of a million-row export (see bench/). tests/audit checks it against ``export_values``.
    """
    created = row["created_at"]
    actor_id = row["actor_id"]
    cells = [
        str(row["seq"]),
        chain.format_time(created) if isinstance(created, datetime) else created,
        "" if actor_id is None or actor_id == "" else str(actor_id),
        row["actor_label"],
        row["action"],
        row["target_type"],
        row["target_id"],
        row["target_repr"],
        row["resource_slug"],
        row["request_id"],
        row["ip"] or "",
        row["user_agent"],
        row["assertion_jti"],
        row["assertion_sid"],
        chain.dumps(row["details"]),
        row["prev_hash"],
        row["hash"],
        row["upstream_request_id"],
    ]
    return ["'" + cell if cell and cell[0] in _NEUTRALISE else cell for cell in cells]


def csv_chunks(rows: Iterable[Mapping[str, Any]], *, bom: bool = True) -> Iterator[str]:
    """The CSV text in pieces of about BUFFER_BYTES characters, header first."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if bom:
        buffer.write("\ufeff")
    writer.writerow(EXPORT_COLUMNS)
    for row in rows:
        writer.writerow(csv_cells(row))
        if buffer.tell() >= BUFFER_BYTES:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def jsonl_line(row: Mapping[str, Any]) -> str:
    return json.dumps(export_values(row), ensure_ascii=False, separators=(",", ":")) + "\n"


def jsonl_chunks(rows: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    parts: list[str] = []
    size = 0
    for row in rows:
        line = jsonl_line(row)
        parts.append(line)
        size += len(line)
        if size >= BUFFER_BYTES:
            yield "".join(parts)
            parts.clear()
            size = 0
    if parts:
        yield "".join(parts)


CSV_HEADER = "\ufeff" + ",".join(EXPORT_COLUMNS) + "\r\n"


class CopyChunks:
    """COPY's output as UTF-8 pieces (``encoded`` passes them through untouched), or as
    text when iterated directly."""

    def __init__(self, rows: Entries, fmt: str) -> None:
        header = CSV_HEADER if fmt == "csv" else ""
        self.pieces = export_copy.stream(rows.queryset, fmt, header=header.encode())

    def __iter__(self) -> Iterator[str]:
        for piece in self.pieces:
            yield piece.decode("utf-8")


def chunks(rows: Iterable[Mapping[str, Any]], fmt: str) -> Iterable[str]:
    """The export text in pieces. Entries on PostgreSQL stream through COPY; anything
    else (SQLite, plain dicts) goes through the Python writers. Both write the same."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r} (csv or jsonl)")
    if isinstance(rows, Entries) and rows.copies:
        return CopyChunks(rows, fmt)
    if fmt == "csv":
        return csv_chunks(rows)
    return jsonl_chunks(rows)


def encoded(pieces: Iterable[str]) -> Iterator[bytes]:
    if isinstance(pieces, CopyChunks):
        yield from pieces.pieces
        return
    for piece in pieces:
        yield piece.encode("utf-8")


def record_export(
    *, actor: Any, fmt: str, filters: Mapping[str, Any], via: str, **extra: Any
) -> AuditEvent:
    """Write the ``audit.exported`` entry in a transaction of its own; call it before the
    first byte is sent, so no export goes unrecorded. Returns the entry (its seq bounds
    the export)."""
    details = {"format": fmt, "filters": dict(filters), "via": via, **extra}
    return record_now(AuditAction.AUDIT_EXPORTED, actor=actor, details=details)


# --- Reading an export back (verify_audit --file) ---------------------------------------


def _checked(data: Any, line: int) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ExportFileError(line, "not a JSON object")
    missing = [name for name in _REQUIRED_COLUMNS if name not in data]
    if missing:
        raise ExportFileError(line, "missing " + ", ".join(missing))
    try:
        int(data["seq"])
    except (TypeError, ValueError):
        raise ExportFileError(line, f"seq {data['seq']!r} is not a number") from None
    return data


def read_jsonl(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ExportFileError(number, f"invalid JSON ({exc.msg})") from None
        yield _checked(data, number)


def read_csv(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """Rows of a CSV export as chain entries (neutralisation undone, details parsed).

    Open the file with ``encoding="utf-8-sig", newline=""``.
    """
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None:
        return
    columns = tuple(header)
    if columns not in (EXPORT_COLUMNS, _REQUIRED_COLUMNS):
        raise ExportFileError(1, "the header is not the documented column order")
    for cells in reader:
        number = reader.line_num
        if len(cells) != len(columns):
            raise ExportFileError(number, f"{len(cells)} cells, expected {len(columns)}")
        data: dict[str, Any] = dict(zip(columns, map(unneutralise, cells), strict=True))
        try:
            data["details"] = json.loads(data["details"])
        except json.JSONDecodeError as exc:
            raise ExportFileError(number, f"details is not JSON ({exc.msg})") from None
        yield _checked(data, number)


def download(queryset: Any, *, fmt: str, name: str, upto_seq: int) -> StreamingHttpResponse:
    """Stream ``queryset`` (entries up to ``upto_seq``) as an attachment called ``name``."""
    rows = entries(queryset, upto_seq=upto_seq)
    response = StreamingHttpResponse(encoded(chunks(rows, fmt)), content_type=FORMATS[fmt])
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "no-store"
    return response
