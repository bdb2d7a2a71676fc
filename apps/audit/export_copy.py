"""The PostgreSQL export path: ``COPY (SELECT ...) TO STDOUT``.

The server formats every CSV cell, so Python only moves bytes; for JSON Lines it sends the
values as cells and Python puts the keys around them, a piece of rows at a time. The output
is the same as the Python writers in ``export`` (``csv_chunks``, ``jsonl_chunks``) byte for
byte, with one exception: inside a JSON Lines ``details`` object the keys come in canonical
(sorted) order, because the stored canonical text is streamed as is (the Python path writes
them in the order the database returns them). tests/audit proves it.

How each rule of the Python writers is reproduced (see docs/audit-export.md):

* ``details`` is ``details_text``, the canonical JSON stored when the entry was written.
* ``created_at``: ``to_char`` in UTC with six fractional digits and ``+00:00``.
* Neutralising: a cell whose first character is one of ``= + - @``, tab, CR or ``'`` gets
  one ``'`` in front (compared by code point with ``ascii()``, 0 for an empty cell).
* CSV quoting: PostgreSQL's CSV output quotes exactly what ``csv.writer`` quotes (a comma,
  a double quote, CR or LF; quotes doubled) once empty cells are sent as NULL (COPY quotes
  an empty string, ``csv.writer`` does not). Rows end in LF; COPY sends one row per
  message, so each message's last byte is replaced with CR LF. BOM and header are written
  here.
* JSON Lines: COPY sends the cells in CSV mode with control characters as delimiter, quote
  and NULL text, so a cell arrives as it is unless it holds one of them, CR or LF. A piece
  of rows in which no cell is quoted is split on the delimiter and filled into one
  template: text with no byte JSON escapes (``"``, ``\\``, below 0x20) is its own JSON
  string body, and the text cells of the few rows that hold one are escaped in place by
  json's encoder (``json.dumps(ensure_ascii=False)``), as the Python writer does. A piece
  with a quoted cell is read row by row, the same way.

The COPY runs as one statement in autocommit: no transaction stays open, but the
statement keeps its snapshot until the last row is sent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.models import QuerySet
from django.db.models.expressions import RawSQL

BUFFER_BYTES = 64 * 1024

_T = '"audit_auditevent".'
# Code points of = + - @ tab CR ' (see export._NEUTRALISE).
_FORMULA_CODES = "61, 43, 45, 64, 9, 13, 39"


def _neutral(expr: str) -> str:
    return f"CASE WHEN ascii({expr}) IN ({_FORMULA_CODES}) THEN '''' || {expr} ELSE {expr} END"


def _text_cell(column: str) -> str:
    # NULL for an empty cell: COPY writes NULL unquoted and quotes an empty string.
    return _neutral(f"nullif({_T}{column}, '')")


_CREATED = f"""to_char({_T}created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')"""


def _number_cell(column: str) -> str:
    return f"CASE WHEN {_T}{column} < 0 THEN '''' || {_T}{column} ELSE {_T}{column}::text END"


# One SQL expression per export column, in EXPORT_COLUMNS order.
CSV_CELLS: dict[str, str] = {
    "seq": _number_cell("seq"),
    "created_at": _CREATED,
    "actor_id": _number_cell("actor_id"),
    "actor_label": _text_cell("actor_label"),
    "action": _text_cell("action"),
    "target_type": _text_cell("target_type"),
    "target_id": _text_cell("target_id"),
    "target_repr": _text_cell("target_repr"),
    "resource_slug": _text_cell("resource_slug"),
    "request_id": _text_cell("request_id"),
    # inet's text form starts with a hex digit or ':' (never neutralised); NULL is empty.
    "ip": f"{_T}ip",
    "user_agent": _text_cell("user_agent"),
    "assertion_jti": _text_cell("assertion_jti"),
    "assertion_sid": _text_cell("assertion_sid"),
    "details": _text_cell("details_text"),
    "prev_hash": _text_cell("prev_hash"),
    "hash": _text_cell("hash"),
    "upstream_request_id": _text_cell("upstream_request_id"),
}


# JSON Lines: the server sends each entry's values as cells and this module puts the keys
# around them. Cells that arrive as JSON text (a number, null, a quoted string or the stored
# details) are spliced as they are; the others are the columns' raw text, which lands
# between quotes as is when it holds nothing JSON escapes (checked per piece, below).
_JSON_CELLS: dict[str, str] = {
    "seq": f"{_T}seq",
    "actor_id": f"""coalesce('"' || {_T}actor_id || '"', 'null')""",
    # to_json(inet) is inet's output text, quoted (never the /32 of ip::text).
    "ip": f"coalesce(to_json({_T}ip)::text, 'null')",
    "details": f"{_T}details_text",
}

# One SQL expression per export column, in EXPORT_COLUMNS order.
JSONL_CELLS: dict[str, str] = {
    name: _JSON_CELLS.get(name, _CREATED if name == "created_at" else f"{_T}{name}")
    for name in CSV_CELLS
}
# Positions of the cells that are raw text.
_RAW = tuple(n for n, name in enumerate(JSONL_CELLS) if name not in _JSON_CELLS)
_WIDTH = len(JSONL_CELLS)


def _jsonl_template() -> bytes:
    parts = []
    for n, name in enumerate(JSONL_CELLS):
        quote = "" if name in _JSON_CELLS else '"'
        parts.append(("," if n else "{") + f'"{name}":{quote}%b{quote}')
    return ("".join(parts) + "}\n").encode()


# One line, with a %b for each cell.
JSONL_TEMPLATE = _jsonl_template()

# CSV mode with control characters as delimiter, quote and NULL: a cell is quoted only when
# it holds one of them, CR or LF (or is the NULL text). JSON text holds none of them raw, so
# a quoted cell is always a text cell that needs escaping anyway. An empty cell is not
# quoted, as the NULL text is not empty (no cell is NULL).
_DELIMITER = b"\x02"
_QUOTE = b"\x01"
_JSONL_OPTIONS = "FORMAT csv, DELIMITER E'\\x02', QUOTE E'\\x01', NULL E'\\x03'"

# The bytes JSON escapes inside a string, as json.dumps(ensure_ascii=False) does: the quote,
# the backslash and every control character below U+0020. In UTF-8 no byte of a non-ASCII
# character is below 0x80, so looking at bytes is exact.
_ESCAPED = bytes(range(0x20)) + b'"\\'
_ESCAPED_BUT_LF = _ESCAPED.replace(b"\n", b"")
# What stands in the spliced cells' places when the text cells are checked row by row: an
# LF in the first (seq) starts each row (no unquoted cell holds one), the others are empty.
_SPLICED_FILL = tuple(
    (n, b"\n" if n == 0 else b"") for n, name in enumerate(JSONL_CELLS) if name in _JSON_CELLS
)

# One cell of a row and the delimiter or LF after it: quoted (quotes inside doubled) or plain.
_CELL = re.compile(rb"(?:\x01([^\x01]*(?:\x01\x01[^\x01]*)*)\x01|([^\x02\n]*))[\x02\n]")


def jsonl_lines(rows: list[bytes]) -> bytes:
    """The JSON lines of ``rows``, COPY's rows of JSONL_CELLS (each ends in LF).

    In one go when no cell is quoted: split on the delimiter, the few text cells that need
    it escaped in place, one template filled. Otherwise row by row."""
    data = b"".join(rows)
    if _QUOTE in data:
        return b"".join(map(_jsonl_line, rows))
    # No cell is quoted, so none holds the delimiter or LF: splitting is exact.
    cells = data.replace(b"\n", _DELIMITER).split(_DELIMITER)
    del cells[-1]  # after the last LF
    # Each row's text cells after an LF: the spliced cells' places hold the LF or nothing.
    text = cells.copy()
    for n, fill in _SPLICED_FILL:
        text[n::_WIDTH] = [fill] * len(rows)
    joined = b"".join(text)
    if len(joined.translate(None, _ESCAPED_BUT_LF)) != len(joined):  # some row needs escaping
        for row, row_text in enumerate(joined.split(b"\n")[1:]):
            if len(row_text.translate(None, _ESCAPED_BUT_LF)) != len(row_text):
                _escape(cells, row * _WIDTH)
    return (JSONL_TEMPLATE * len(rows)) % tuple(cells)


# json.dumps(text, ensure_ascii=False), without building an encoder for each call.
_json_string = json.JSONEncoder(ensure_ascii=False).encode


def _jsonl_line(row: bytes) -> bytes:
    """One row on its own, read cell by cell (a quoted cell unquoted)."""
    # A quoted cell has no plain part and the other way round (an empty one has neither).
    pairs = _CELL.findall(row)
    cells = [quoted.replace(b"\x01\x01", b"\x01") or plain for quoted, plain in pairs]
    _escape(cells, 0)
    return JSONL_TEMPLATE % tuple(cells)


def _escape(cells: list[bytes], start: int) -> None:
    """Escape the text cells of the row at ``cells[start:]`` that need it, as json does."""
    for n in _RAW:
        cell = cells[start + n]
        if len(cell.translate(None, _ESCAPED)) != len(cell):
            cells[start + n] = _json_string(cell.decode())[1:-1].encode()


def copy_statement(queryset: QuerySet[Any], fmt: str) -> tuple[str, tuple[Any, ...]] | None:
    """The COPY statement and its parameters for ``queryset`` (its filters, seq order),
    or None when the queryset can match nothing."""
    if queryset.query.distinct or queryset.query.combinator:
        # The expressions read the base table's columns; keep only its rows' selection.
        queryset = queryset.model._default_manager.filter(pk__in=queryset.values("pk"))
    # RawSQL holds only the constant expressions above (no input); filters stay Django's.
    cells, options = (CSV_CELLS, "FORMAT csv") if fmt == "csv" else (JSONL_CELLS, _JSONL_OPTIONS)
    names = [f"_x_{name}" for name in cells]
    annotated = queryset.annotate(
        **{n: RawSQL(sql, ()) for n, sql in zip(names, cells.values(), strict=True)}  # noqa: S611
    )
    select = annotated.order_by("seq").values_list(*names)
    try:
        sql, params = select.query.sql_with_params()
    except EmptyResultSet:
        return None
    return f"COPY ({sql}) TO STDOUT ({options})", tuple(params)


def stream(queryset: QuerySet[Any], fmt: str, *, header: bytes) -> Iterator[bytes]:
    """``header`` then every row of ``queryset`` in ``fmt``, as pieces of about
    BUFFER_BYTES bytes. Rows are read as the server sends them: memory stays flat."""
    statement = copy_statement(queryset, fmt)
    if statement is None:
        if header:
            yield header
        return
    connection = connections[queryset.db]
    pieces = _csv_pieces if fmt == "csv" else _jsonl_pieces
    with connection.cursor() as cursor, cursor.cursor.copy(*statement) as copy:
        yield from pieces(copy, header)


def _csv_pieces(rows: Iterable[Any], header: bytes) -> Iterator[bytes]:
    buffer = bytearray(header)
    for data in rows:
        buffer += data
        # One COPY message is one row, ending in LF; the CSV ends rows in CR LF.
        buffer[-1:] = b"\r\n"
        if len(buffer) >= BUFFER_BYTES:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)


def _jsonl_pieces(rows: Iterable[Any], header: bytes) -> Iterator[bytes]:
    # Each COPY message is one row (a memoryview valid until the next one).
    batch: list[bytes] = []
    size = 0
    for data in rows:
        batch.append(bytes(data))
        size += len(data)
        if size >= BUFFER_BYTES:
            yield header + jsonl_lines(batch)
            header = b""
            batch.clear()
            size = 0
    if batch or header:
        yield header + jsonl_lines(batch)
