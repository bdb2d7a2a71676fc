"""Keeps routine errors out of the log as tracebacks (``LOGGING`` loads it before the apps,
so it imports no model).

Django logs a refused permission (``PermissionDenied``) with its traceback, and a database
outage as "Internal Server Error" with one. The first keeps its line, without the
traceback; the second is dropped: ``apps.access.errors.unavailable`` logs its own line.
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied
from django.db import InterfaceError, OperationalError

ROUTINE = (PermissionDenied, OperationalError, InterfaceError)


def is_outage(exc: BaseException | None) -> bool:
    """The database cannot be reached (or dropped the connection): not a bug, a wait."""
    return isinstance(exc, OperationalError | InterfaceError)


class QuietRoutineErrors(logging.Filter):
    """One line for a routine refusal, none for an outage (see the module docstring)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        # Only Django's request log: a worker's or a task's database error keeps its traceback.
        if record.name != "django.request" or not isinstance(exc, ROUTINE):
            return True
        if is_outage(exc):
            return False
        record.exc_info = None
        record.exc_text = None
        return True
