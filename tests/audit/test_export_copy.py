"""The PostgreSQL COPY export writes what the Python writers write, for hostile content.

Each test builds the same trail, then exports it twice: through ``export.chunks`` with
``Entries`` (COPY on PostgreSQL) and through the Python writers given the same rows as plain
dicts. The CSV must be byte-identical (BOM, CRLF, quoting, neutralising); the JSON Lines
identical once parsed (keys in column order; only key order *inside* details may differ).
"""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from apps.access.actions import AccessAction
from apps.audit import chain, context, export
from apps.audit.models import AuditEvent
from tests.factories import UserFactory

from .conftest import T0, add_entry

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

HOSTILE = [
    '=HYPERLINK("http://evil","x")',
    "+1",
    "-2+3",
    "@SUM(A1)",
    "\tleading tab",
    "\rleading CR",
    "'apostrophe",
    'quote " inside, and a comma',
    "line one\nline two",
    "crlf\r\ninside",
    "Zoë 🚀 ☃ \u2028 \u00a0",
    "control \x01 \x1f \x7f chars",
    "back\\slash \\. \\N",
    "",
    " leading space",
    "\\.",
]


def _trail() -> list[AuditEvent]:
    events = []
    for n, text in enumerate(HOSTILE):
        user = UserFactory(email=f"u{n}@example.com") if n % 3 == 0 else None
        token = context.activate(
            context.AuditContext(
                request_id=text[:128],
                ip=[None, "10.1.2.3", "2001:db8::1", "::ffff:10.0.0.1"][n % 4],
                user_agent=text,
                assertion_jti=text[:64],
                assertion_sid=text[:128],
            )
        )
        try:
            events.append(
                add_entry(
                    AccessAction.GRANT_BREAK_GLASS if n % 2 else AccessAction.GRANT_REVOKED,
                    at=T0 + timedelta(seconds=n, microseconds=n * 7 if n % 5 else 0),
                    actor=user,
                    actor_label=None if user else (text or "system")[:254],
                    target=user,
                    resource_slug=text[:64],
                    details={
                        "reason": text,
                        text: [text, n, n + 0.5, None, True, {"b": 1, "a": text}],
                        "api_token": "s3cret-value",  # masked at write time
                        "nested": {"password": "hunter2", "z": -1, "ä": "ß"},
                        "zz": "=x",
                        "b": "first by length, last by code point",
                    },
                )
            )
        finally:
            context.deactivate(token)
    return events


def both(fmt: str, queryset: Any, upto_seq: int | None = None) -> tuple[bytes, bytes]:
    """(COPY path, Python path) for the same selection."""
    rows = export.entries(queryset, upto_seq=upto_seq)
    pieces = export.chunks(rows, fmt)
    assert isinstance(pieces, export.CopyChunks)  # really the COPY path
    fast = b"".join(export.encoded(pieces))
    plain = list(export.entries(queryset, upto_seq=upto_seq))
    slow = b"".join(export.encoded(export.chunks(iter(plain), fmt)))
    return fast, slow


def csv_cells(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def test_the_hostile_trail_is_stored_as_expected() -> None:
    events = _trail()
    stored = AuditEvent.objects.get(pk=events[0].pk)
    assert stored.details["api_token"] == "***" and stored.details["nested"]["password"] == "***"
    assert "s3cret" not in stored.details_text and "hunter2" not in stored.details_text
    assert all(e.details_text == chain.dumps(e.details) for e in AuditEvent.objects.all())


def test_csv_is_byte_identical() -> None:
    events = _trail()
    fast, slow = both("csv", AuditEvent.objects.all())
    assert fast == slow
    assert fast.startswith(b"\xef\xbb\xbfseq,created_at,") and fast.endswith(b"\r\n")
    cells = csv_cells(fast)
    width = len(export.EXPORT_COLUMNS)
    assert len(cells) == len(events) + 1 and all(len(row) == width for row in cells)
    col = export.EXPORT_COLUMNS.index
    assert cells[1][col("user_agent")] == '\'=HYPERLINK("http://evil","x")'
    assert cells[9][col("user_agent")] == "line one\nline two"
    assert cells[6][col("user_agent")] == "'\rleading CR"
    assert cells[10][col("user_agent")] == "crlf\r\ninside"
    assert cells[14][col("user_agent")] == "" and cells[14][col("actor_label")] == "system"
    assert "s3cret" not in fast.decode() and "hunter2" not in fast.decode()


def test_jsonl_parses_to_identical_values() -> None:
    events = _trail()
    fast, slow = both("jsonl", AuditEvent.objects.all())
    fast_lines = [json.loads(line) for line in fast.decode().split("\n")[:-1]]
    slow_lines = [json.loads(line) for line in slow.decode().split("\n")[:-1]]
    assert len(fast_lines) == len(events)
    assert fast_lines == slow_lines
    assert all(tuple(line) == export.EXPORT_COLUMNS for line in fast_lines)
    assert fast.endswith(b"\n") and b"\r\n" not in fast.replace(b"\\r\\n", b"")
    # Top-level keys come in the same order (only the order inside details may differ).
    for a, b in zip(fast_lines, slow_lines, strict=True):
        assert json.dumps({**a, "details": 0}) == json.dumps({**b, "details": 0})


@pytest.mark.parametrize(
    "filters",
    [
        {"since": T0 + timedelta(seconds=3)},
        {"until": T0 + timedelta(seconds=5)},
        {"actor": "U3@example.com"},
        {"resource": "+1"},
        {"action": AccessAction.GRANT_BREAK_GLASS},
        {"actor": "+1", "action": AccessAction.GRANT_BREAK_GLASS},
    ],
)
def test_the_same_filters_select_the_same_rows(filters: dict[str, Any]) -> None:
    events = _trail()
    queryset = export.ExportFilters(**filters).apply(AuditEvent.objects.all())
    upto = events[-3].seq
    for fmt in export.FORMATS:
        fast, slow = both(fmt, queryset, upto_seq=upto)
        if fmt == "csv":
            assert fast == slow
            assert 1 < len(csv_cells(fast)) < len(events) + 1  # a real subset
        else:
            assert [json.loads(x) for x in fast.splitlines()] == [
                json.loads(x) for x in slow.splitlines()
            ]


def test_an_empty_selection_is_the_header_alone() -> None:
    _trail()
    for queryset in (AuditEvent.objects.none(), AuditEvent.objects.filter(seq__gt=10**9)):
        fast, slow = both("csv", queryset)
        assert fast == slow == export.CSV_HEADER.encode()
        assert both("jsonl", queryset) == (b"", b"")


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_copy_export_verifies_offline(fmt: str, tmp_path: Path) -> None:
    events = _trail()
    path = tmp_path / f"all.{fmt}"
    call_command("export_audit", "--format", fmt, "-o", str(path), stdout=io.StringIO())
    head = AuditEvent.objects.order_by("-seq").first()
    assert head is not None and head.action == "audit.exported"
    out = io.StringIO()
    call_command("verify_audit", "--file", str(path), stdout=out)
    intact, note = out.getvalue().splitlines()
    assert intact == f"audit chain intact: {len(HOSTILE) + 1} entries, head {head.hash}"
    # The line separator and the control characters are kept, and named (tests/audit/
    # test_hidden_text.py).
    hidden = [
        e.seq for e, text in zip(events, HOSTILE, strict=True) if "\u2028" in text or "\x01" in text
    ]
    assert note.startswith(
        "note: 2 entries carry hidden or direction-changing characters "
        f"(#{hidden[0]}, #{hidden[1]})"
    )


def test_pieces_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from apps.audit import export_copy

    events = _trail()
    monkeypatch.setattr(export_copy, "BUFFER_BYTES", 1)
    pieces = list(export.encoded(export.chunks(export.entries(AuditEvent.objects.all()), "csv")))
    assert len(pieces) == len(events)  # the header travels with the first row


@pytest.mark.django_db(transaction=True)  # autocommit, as a streaming download runs
def test_a_download_abandoned_midway_leaves_the_connection_usable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from apps.audit import export_copy

    _trail()
    monkeypatch.setattr(export_copy, "BUFFER_BYTES", 1)
    pieces = export.encoded(export.chunks(export.entries(AuditEvent.objects.all()), "jsonl"))
    next(pieces)
    pieces.close()  # the client went away: the generator is closed mid-COPY
    assert AuditEvent.objects.count() == len(HOSTILE)


def test_a_distinct_or_combined_queryset_exports_the_same_rows() -> None:
    _trail()
    base = AuditEvent.objects.filter(seq__lte=5)
    for queryset in (base.distinct(), base.union(AuditEvent.objects.filter(seq=9))):
        fast, slow = both("csv", queryset)
        assert fast == slow
        assert [row[0] for row in csv_cells(fast)[1:]] == ["1", "2", "3", "4", "5"] + (
            ["9"] if queryset.query.combinator else []
        )


# What a JSON Lines cell of the COPY path may hold: COPY's delimiter (\x02), quote (\x01) and
# NULL text (\x03), alone and mixed; what JSON escapes (each control character on its own);
# text that needs nothing.
CELL_TEXTS = [
    "\x02",
    "\x01",
    "\x03",
    "a\x01\x01b\x02c\x03d",
    'say "hi"',
    "back\\slash",
    "nl\nnl",
    "cr\rcr",
    *(chr(code) for code in range(4, 0x20)),  # 1-3 above
    "Zoë → 🚀 \u2028",
    "",
    "\x7f",
    "\\N",
    "\\.",
    "plain",
]
# Every text column of the trail (from the model, so a new one is covered), but the stored
# details, which must stay JSON: 13 today, from actor_label to upstream_request_id.
TEXT_COLUMNS = [
    field.column
    for field in AuditEvent._meta.concrete_fields
    if field.get_internal_type() in ("CharField", "TextField") and field.name != "details_text"
]


def python_lines(queryset: Any) -> bytes:
    """The Python writer's lines with ``details`` as stored (the COPY path's one difference)."""
    lines = []
    for row in export.entries(queryset.all()):
        values = {**export.export_values(row), "details": json.loads(row["details_text"])}
        lines.append(json.dumps(values, ensure_ascii=False, separators=(",", ":")) + "\n")
    return "".join(lines).encode()


def copy_lines(queryset: Any) -> bytes:
    pieces = export.chunks(export.entries(queryset.all()), "jsonl")
    assert isinstance(pieces, export.CopyChunks)
    return b"".join(export.encoded(pieces))


@pytest.mark.parametrize("piece_bytes", [1, 64 * 1024])
def test_jsonl_lines_are_the_python_lines_byte_for_byte(
    piece_bytes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from apps.audit import export_copy

    events = _trail()
    monkeypatch.setattr(export_copy, "BUFFER_BYTES", piece_bytes)
    fast = copy_lines(AuditEvent.objects.all())
    assert fast == python_lines(AuditEvent.objects.all())
    assert fast.count(b"\n") == len(events)


def _hostile_columns(texts: list[str], raw_sql: Any) -> None:
    """Two entries per text: the first with ``text`` in every text column, then a plain one."""
    events = [add_entry(details={"n": n}) for n in range(len(texts) * 2)]
    assignments = ", ".join(f"{column} = %s" for column in TEXT_COLUMNS)
    for event, text in zip(events[::2], texts, strict=True):
        raw_sql(
            f"UPDATE audit_auditevent SET {assignments} WHERE seq = %s",  # noqa: S608
            [text] * len(TEXT_COLUMNS) + [event.seq],
        )


@pytest.mark.parametrize("piece_bytes", [1, 64 * 1024])
def test_jsonl_escapes_what_json_escapes_in_every_text_column(
    piece_bytes: int, raw_sql: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from apps.audit import export_copy

    _hostile_columns(CELL_TEXTS, raw_sql)
    monkeypatch.setattr(export_copy, "BUFFER_BYTES", piece_bytes)
    fast = copy_lines(AuditEvent.objects.all())
    assert fast == python_lines(AuditEvent.objects.all())
    lines = [json.loads(line) for line in fast.decode().split("\n")[:-1]]
    assert [line["user_agent"] for line in lines[::2]] == CELL_TEXTS
    assert all(line["hash"] == text for line, text in zip(lines[::2], CELL_TEXTS, strict=True))


def test_jsonl_escapes_rows_among_others_without_reading_them_one_by_one(
    raw_sql: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from apps.audit import export_copy

    # Text COPY does not quote (no CR, LF or control character of its own).
    texts = [text for text in CELL_TEXTS if not set(text) & set("\x01\x02\x03\r\n")]
    _hostile_columns(texts, raw_sql)

    def one_by_one(row: bytes) -> bytes:
        raise AssertionError(f"read row by row: {row!r}")

    monkeypatch.setattr(export_copy, "_jsonl_line", one_by_one)
    fast = copy_lines(AuditEvent.objects.all())
    assert fast == python_lines(AuditEvent.objects.all())
    assert [json.loads(line)["target_repr"] for line in fast.splitlines()[::2]] == texts


def test_jsonl_reads_rows_with_nothing_to_escape_in_one_go(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from apps.audit import export_copy

    events = [add_entry(details={"n": n, "why": 'a "quote"\n'}) for n in range(5)]

    def one_by_one(row: bytes) -> bytes:
        raise AssertionError(f"read row by row: {row!r}")

    monkeypatch.setattr(export_copy, "_jsonl_line", one_by_one)
    fast = copy_lines(AuditEvent.objects.all())
    assert fast == python_lines(AuditEvent.objects.all())
    assert [json.loads(line)["seq"] for line in fast.splitlines()] == [e.seq for e in events]
