"""Shared by the management commands: argument errors as one line and exit status 2,
ISO 8601 bounds from the command line, and output to a file or stdout.

Generic on purpose: the access report command (in the access app) uses these too.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterable
from datetime import datetime
from typing import IO, Any, NoReturn

from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper

from apps.audit import export

USAGE_ERROR = 2


def usage_error(message: str) -> CommandError:
    """A bad argument: printed as one line, exit status 2."""
    return CommandError(message, returncode=USAGE_ERROR)


def _one_line_error(parser: CommandParser, message: str) -> NoReturn:
    if parser.called_from_command_line:
        sys.stderr.write(f"{parser.prog}: error: {message} (see --help)\n")
        sys.exit(USAGE_ERROR)
    raise usage_error(f"Error: {message}")


class OneLineErrorsMixin(BaseCommand):
    """argparse prints its usage block before an error; scheduled jobs want one line."""

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.error = types.MethodType(_one_line_error, parser)  # type: ignore[method-assign]
        return parser


def instant(option: str, value: str | None, *, end: bool) -> datetime | None:
    """An ISO 8601 date or date-time argument as an aware instant; a bad one is a usage error.

    ``end=True`` reads a bare date as the end of that day (the start of the next).
    """
    if value is None:
        return None
    try:
        return export.parse_bound(value, end=end)
    except ValueError as exc:
        raise usage_error(f"{option}: {exc}") from None


def open_output(path: str | None) -> IO[bytes] | None:
    """The output file, opened before anything is audited; None means stdout."""
    if path is None or path == "-":
        return None
    try:
        return open(path, "wb")  # closed by the caller
    except OSError as exc:
        raise usage_error(f"cannot write {path}: {exc.strerror}") from None


def write_output(stdout: OutputWrapper, output: IO[bytes] | None, pieces: Iterable[str]) -> None:
    """Write ``pieces`` as UTF-8 to ``output``, or to the command's stdout when it is None."""
    if output is not None:
        for piece in pieces:
            output.write(piece.encode("utf-8"))
        return
    # Bytes to the real stdout whatever the locale says; text to a StringIO in tests.
    buffer = getattr(stdout, "buffer", None)
    if buffer is not None:
        stdout.flush()
        for piece in pieces:
            buffer.write(piece.encode("utf-8"))
        buffer.flush()
    else:
        for piece in pieces:
            stdout.write(piece, ending="")
