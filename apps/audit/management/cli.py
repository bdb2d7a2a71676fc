"""Shared by the audit commands: argument errors as one line and exit status 2."""

from __future__ import annotations

import sys
import types
from typing import Any, NoReturn

from django.core.management.base import BaseCommand, CommandError, CommandParser

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
