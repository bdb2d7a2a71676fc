"""The ``jit`` command line: its arguments and exit codes. ``jit COMMAND --help`` says more.

The commands live in ``requester``, ``approver`` and ``login``; docs/cli.md describes them.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from . import __version__
from .approver import cmd_approve, cmd_grants, cmd_pending, cmd_reject, cmd_revoke
from .core import (
    CONFLICT,
    DURATION_FORMS,
    ENDED,
    FAILED,
    NOT_ENFORCED,
    NOT_SIGNED_IN,
    OK,
    REFUSED,
    TIMED_OUT,
    USAGE,
    CliError,
    duration_text,
    parse_duration,
    parse_minutes,
    parse_time,
    say,
)
from .login import cmd_login, cmd_logout
from .objects import REF_FORMS, Ref, parse_ref
from .requester import (
    cmd_cancel,
    cmd_end,
    cmd_extend,
    cmd_request,
    cmd_resources,
    cmd_status,
    cmd_wait,
)

EXIT_CODES = f"""\
exit codes:
  {OK}  success (for `wait`: Pomerium lets you in now)
  {FAILED}  the portal or the network failed
  {USAGE}  bad arguments, or input the portal rejected as malformed
  {NOT_SIGNED_IN}  not signed in to that portal, or the session expired: run `jit login`
  {REFUSED}  not allowed, or not found
  {CONFLICT}  refused by a rule: conflict, illegal transition, policy violation
  {ENDED}  `wait`: the request or grant ended without letting you in
  {TIMED_OUT}  `wait`: not allowed before the timeout, or it opens only after it
  {NOT_ENFORCED}  `wait`: Pomerium does not enforce the grant (sync error)

durations: {DURATION_FORMS}; a number always carries its unit.
"""

MAX_STATUS_LIMIT = 500
T = TypeVar("T")


# --- Argument types: each refusal names what it accepts ---------------------------------------


def _checked(parse: Callable[[str], T]) -> Callable[[str], T]:
    def convert(text: str) -> T:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = parse.__name__  # argparse names the type in some messages
    return convert


def _at_least(shortest: timedelta) -> Callable[[str], timedelta]:
    def duration(text: str) -> timedelta:
        value = parse_duration(text)
        if value < shortest:
            raise ValueError(f"{text!r} is too short: at least {duration_text(shortest)}")
        return value

    return _checked(duration)


def _object_id(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 2**31:
        raise ValueError(f"{text!r} is not an id like 12")
    return int(text)


def _limit(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_STATUS_LIMIT:
        raise ValueError(f"{text!r} is not a number from 1 to {MAX_STATUS_LIMIT}")
    return int(text)


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise ValueError(f"{text!r} is not a port from 0 (any) to 65535")
    return int(text)


ACCESS_DURATION = _checked(parse_minutes)
SOME_TIME = _checked(parse_duration)
AN_INTERVAL = _at_least(timedelta(milliseconds=500))
OBJECT_ID = _checked(_object_id)
GRANT_REF: Callable[[str], Ref] = _checked(parse_ref)
INSTANT: Callable[[str], datetime] = _checked(parse_time)


def glue_negative_values(argv: Sequence[str]) -> list[str]:
    """``--for -1h`` → ``--for=-1h``: argparse takes a value starting with ``-`` for an
    option and answers "expected one argument"; glued, the type says what is wrong."""
    glued: list[str] = []
    for arg in argv:
        previous = glued[-1] if glued else ""
        if re.match(r"^-\.?\d", arg) and re.match(r"^--[a-z][a-z-]*$", previous):
            glued[-1] = f"{previous}={arg}"
        else:
            glued.append(arg)
    return glued


# --- The parser ------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print JSON for scripts")
    common.add_argument(
        "--url",
        default=os.environ.get("JIT_URL") or None,
        help="the portal's URL (default: the one you logged in to last; env JIT_URL); "
        "its own session is used, never another portal's",
    )
    parser = argparse.ArgumentParser(
        prog="jit",
        description="Just-in-time access through jitportal, from a terminal. Times are shown "
        "in this machine's time zone.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"jit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Callable[[argparse.Namespace], int], text: str) -> Any:
        p = sub.add_parser(
            name,
            parents=[common],
            help=text,
            description=text,
            epilog=EXIT_CODES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.set_defaults(func=func)
        return p

    p = add("login", cmd_login, "Sign in through Pomerium and store the session (mode 0600).")
    p.add_argument("portal", nargs="?", help="the portal's URL, e.g. https://jit.example.com")
    p.add_argument("--no-browser", action="store_true", help="print the sign-in URL only")
    p.add_argument("--port", type=_checked(_port), default=0, help="callback port (default: any)")
    p.add_argument("--timeout", type=SOME_TIME, default="5m", help="give up after (default 5m)")
    p = add("logout", cmd_logout, "Forget the stored session (of --url's portal, else the last).")
    p.add_argument("--all", action="store_true", help="forget the sessions of every portal")
    add("resources", cmd_resources, "The resources you may request, with durations and flags.")

    p = add("request", cmd_request, "Ask for access to a resource.")
    p.add_argument("resource", help="the resource's slug (see `jit resources`)")
    p.add_argument("--for", dest="duration", type=ACCESS_DURATION, required=True, help="e.g. 1h")
    p.add_argument("--reason", required=True, help="why you need access")
    p.add_argument("--ticket", help="a ticket reference, e.g. INC-1234")
    p.add_argument("--at", type=INSTANT, help="start later: ISO time, local unless it has a zone")
    p.add_argument("--idempotency-key", help="reuse to retry safely (default: a fresh one)")

    p = add("status", cmd_status, "Your open grants (can you get in now?) and recent requests.")
    p.add_argument("id", nargs="?", type=OBJECT_ID, help="one request, by its id")
    p.add_argument(
        "--limit", type=_checked(_limit), default=20, help="how many requests (1-500, default 20)"
    )

    p = add("wait", cmd_wait, "Block until Pomerium lets you in on the request's grant.")
    p.add_argument("id", type=OBJECT_ID, help="the request id `jit request` printed")
    p.add_argument("--timeout", type=SOME_TIME, default="5m", help="give up after (default 5m)")
    p.add_argument("--interval", type=AN_INTERVAL, default="2s", help="between checks (2s)")

    p = add("cancel", cmd_cancel, "Withdraw your pending request.")
    p.add_argument("id", type=OBJECT_ID, help="the request id")
    grant_help = f"the grant: {REF_FORMS}"
    p = add("end", cmd_end, "End your own access now.")
    p.add_argument("grant", type=GRANT_REF, help=grant_help)

    p = add(
        "extend",
        cmd_extend,
        "Your grant: ask for more time (an extension request). Someone else's (approvers): "
        "move its end now.",
    )
    p.add_argument("grant", type=GRANT_REF, help=grant_help)
    p.add_argument("--for", dest="duration", type=ACCESS_DURATION, help="how much longer: 30m")
    p.add_argument("--until", type=INSTANT, help="approvers: the new end (ISO time)")
    p.add_argument("--reason", help="why (required for approvers)")
    p.add_argument("--override", action="store_true", help="approvers: past the maximum")

    add("pending", cmd_pending, "Approvers: the requests waiting for your decision.")
    p = add("grants", cmd_grants, "Approvers: the open grants on the resources you approve.")
    p.add_argument("--resource", help="only this resource (its slug)")
    p = add("approve", cmd_approve, "Approvers: approve a request.")
    p.add_argument("id", type=OBJECT_ID, help="the request id")
    p.add_argument("--for", dest="duration", type=ACCESS_DURATION, help="shorten to, e.g. 30m")
    p.add_argument("--note", help="a note for the requester")
    p = add("reject", cmd_reject, "Approvers: reject a request.")
    p.add_argument("id", type=OBJECT_ID, help="the request id")
    p.add_argument("--reason", required=True, help="shown to the requester")
    p = add("revoke", cmd_revoke, "Approvers: revoke a grant now.")
    p.add_argument("grant", type=GRANT_REF, help=grant_help)
    p.add_argument("--reason", required=True, help="why")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(glue_negative_values(sys.argv[1:] if argv is None else argv))
    try:
        return int(args.func(args))
    except CliError as exc:
        say(f"jit: {exc.message}")
        return exc.code
    except KeyboardInterrupt:
        say("jit: interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
