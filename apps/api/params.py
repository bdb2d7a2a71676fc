"""The parameter types and error responses every router of ``/api/v1/`` shares."""

from __future__ import annotations

from typing import Annotated, Literal

from ninja import Path, Query

from . import paging
from .schemas import ErrorOut

ObjectId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Limit = Annotated[int, Query(ge=1, le=500)]
Cursor = Annotated[str, Query(max_length=paging.MAX_CURSOR_LENGTH)]
GrantScope = Literal["mine", "all"]
RequestStateName = Literal["pending", "approved", "rejected", "cancelled", "expired"]

# Every write may also meet the middleware's 415 (a body that is not application/json).
ERRORS = {400: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 415: ErrorOut, 422: ErrorOut}
READ_ERRORS = {400: ErrorOut, 403: ErrorOut, 404: ErrorOut}
