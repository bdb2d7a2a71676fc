"""The PostgreSQL export path: ``COPY (SELECT ...) TO STDOUT``, formatted in SQL.

The server formats every row, so Python only moves bytes. The output is the same as the
Python writers in ``export`` (``csv_chunks``, ``jsonl_chunks``) byte for byte, with one
exception: inside a JSON Lines ``details`` object the keys come in canonical (sorted) order,
because the stored canonical text is streamed as is (the Python path writes them in the
order the database returns them). Parsed, every value is identical; tests/audit proves it.

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
* JSON Lines: each line is built by concatenation, strings through ``to_json`` (which
  escapes the same characters as Python's ``json.dumps(ensure_ascii=False)``), and sent
  through CSV mode with a quote and delimiter character that JSON text never contains raw,
  so the line arrives unquoted and unescaped.

The COPY runs as one statement in autocommit: no transaction stays open, but the
statement keeps its snapshot until the last row is sent.
"""

from __future__ import annotations

from collections.abc import Iterator
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


def _json_string(column: str) -> str:
    return f"to_json({_T}{column})::text"


def _jsonl_line() -> str:
    parts = [
        f"""'{{"seq":' || {_T}seq""",
        f"""',"created_at":"' || {_CREATED} || '"'""",
        f"""',"actor_id":' || coalesce('"' || {_T}actor_id || '"', 'null')""",
    ]
    for column in ("actor_label", "action", "target_type", "target_id", "target_repr"):
        parts.append(f"""',"{column}":' || {_json_string(column)}""")
    for column in ("resource_slug", "request_id"):
        parts.append(f"""',"{column}":' || {_json_string(column)}""")
    parts.append(f"""',"ip":' || coalesce(to_json({_T}ip)::text, 'null')""")
    for column in ("user_agent", "assertion_jti", "assertion_sid"):
        parts.append(f"""',"{column}":' || {_json_string(column)}""")
    parts.append(f"""',"details":' || {_T}details_text""")
    parts.append(f"""',"prev_hash":' || {_json_string("prev_hash")}""")
    parts.append(f"""',"hash":' || {_json_string("hash")}""")
    parts.append(f"""',"upstream_request_id":' || {_json_string("upstream_request_id")} || '}}'""")
    return " || ".join(parts)


JSONL_LINE = _jsonl_line()

# CSV mode with control characters as quote and delimiter: JSON text escapes every
# control character, so no line is ever quoted and nothing is escaped.
_JSONL_OPTIONS = "FORMAT csv, DELIMITER E'\\x02', QUOTE E'\\x01'"


def copy_statement(queryset: QuerySet[Any], fmt: str) -> tuple[str, tuple[Any, ...]] | None:
    """The COPY statement and its parameters for ``queryset`` (its filters, seq order),
    or None when the queryset can match nothing."""
    if queryset.query.distinct or queryset.query.combinator:
        # The expressions read the base table's columns; keep only its rows' selection.
        queryset = queryset.model._default_manager.filter(pk__in=queryset.values("pk"))
    # RawSQL holds only the constant expressions above (no input); filters stay Django's.
    if fmt == "csv":
        names = [f"_x_{name}" for name in CSV_CELLS]
        annotated = queryset.annotate(
            **{n: RawSQL(sql, ()) for n, sql in zip(names, CSV_CELLS.values(), strict=True)}  # noqa: S611
        )
        options = "FORMAT csv"
    else:
        names = ["_x_line"]
        annotated = queryset.annotate(_x_line=RawSQL(JSONL_LINE, ()))  # noqa: S611
        options = _JSONL_OPTIONS
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
    buffer = bytearray(header)
    if statement is not None:
        connection = connections[queryset.db]
        crlf = fmt == "csv"
        with connection.cursor() as cursor, cursor.cursor.copy(*statement) as copy:
            for data in copy:
                buffer += data
                if crlf:
                    # One COPY message is one row, ending in LF; the CSV ends rows in CR LF.
                    buffer[-1:] = b"\r\n"
                if len(buffer) >= BUFFER_BYTES:
                    yield bytes(buffer)
                    buffer.clear()
    if buffer:
        yield bytes(buffer)
