"""Cursor paging for the API's lists: every list answers at most ``limit`` rows.

A list is ordered by a time column and the primary key (newest first, or oldest first for
``/pending``). When more rows follow, the answer carries the next page's address in a
``Link: <...>; rel="next"`` header and its cursor in ``X-Next-Cursor``; the body stays
the JSON array it always was. A cursor is opaque to clients: base64url of the last row's
time and id. It only moves the window within rows the person may see (every list filters
on the person first), so it needs no signature; a malformed one is a 400.

Keyset paging, not offsets: a page costs the same at the first row and the ten-thousandth,
and rows filed while a client pages do not shift the pages it has not read yet.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlencode

from django.db.models import Model, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from ninja.errors import ValidationError

from apps.kit import instants

M = TypeVar("M", bound=Model)

MAX_CURSOR_LENGTH = 200
BAD_CURSOR = "not a cursor from this list's X-Next-Cursor (or its Link header)"


def encode(at: datetime, pk: int) -> str:
    raw = f"{at.isoformat()}|{pk}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str) -> tuple[datetime, int]:
    """The cursor's time and id; ``ValidationError`` (400, field ``cursor``) if malformed."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at_text, pk_text = raw.split("|")
        at, pk = datetime.fromisoformat(at_text), int(pk_text)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise _bad_cursor() from None
    if at.utcoffset() is None or not instants.usable(at) or not 1 <= pk <= 2**63 - 1:
        raise _bad_cursor()
    return at, pk


def _bad_cursor() -> ValidationError:
    return ValidationError([{"loc": ("query", "cursor"), "msg": BAD_CURSOR}])


def page(
    rows: QuerySet[M], *, field: str, newest_first: bool, limit: int, cursor: str | None
) -> tuple[list[M], str | None]:
    """Up to ``limit`` rows after ``cursor`` in ``(field, pk)`` order, and the next cursor."""
    if newest_first:
        rows = rows.order_by(f"-{field}", "-pk")
        after = "lt"
    else:
        rows = rows.order_by(field, "pk")
        after = "gt"
    if cursor:
        at, pk = decode(cursor)
        rows = rows.filter(Q(**{f"{field}__{after}": at}) | Q(**{field: at, f"pk__{after}": pk}))
    found = list(rows[: limit + 1])
    if len(found) <= limit:
        return found, None
    last = found[limit - 1]
    return found[:limit], encode(getattr(last, field), last.pk)


def link_next(request: HttpRequest, response: HttpResponse, cursor: str | None) -> None:
    """Point ``response`` at the next page (``Link`` and ``X-Next-Cursor``), if there is one."""
    if cursor is None:
        return
    query: dict[str, Any] = {k: v for k, v in request.GET.items() if k != "cursor"}
    query["cursor"] = cursor
    response["Link"] = f'<{request.path}?{urlencode(query)}>; rel="next"'
    response["X-Next-Cursor"] = cursor
