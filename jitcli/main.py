"""The ``jit`` commands. ``jit --help`` and ``jit COMMAND --help`` describe each one."""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from . import __version__
from .core import (
    CONFLICT,
    ENDED,
    FAILED,
    NOT_SIGNED_IN,
    OK,
    TIMED_OUT,
    USAGE,
    Api,
    CliError,
    emit,
    fail,
    load_session,
    local,
    minutes_text,
    parse_duration,
    parse_instant,
    parse_time,
    rfc3339,
    say,
    shown,
    table,
    until_text,
)
from .login import cmd_login, cmd_logout

EXIT_CODES = f"""\
exit codes:
  {OK}  success (for `wait`: the grant is live in Pomerium)
  {FAILED}  the portal or the network failed
  {USAGE}  bad arguments, or input the portal rejected as malformed
  {NOT_SIGNED_IN}  not signed in or the session expired: run `jit login`
  4  not allowed, or not found
  {CONFLICT}  refused by a rule: conflict, illegal transition, policy violation
  {ENDED}  `wait`: the request or grant ended without going live
  {TIMED_OUT}  `wait`: not live before the timeout
"""


def _api(args: argparse.Namespace) -> Api:
    return Api(load_session(), url=args.url)


# --- requester -------------------------------------------------------------------------------


def _flags(r: dict[str, Any]) -> str:
    flags = []
    if r["ticket_required"]:
        flags.append("ticket")
    if r["allow_scheduled"]:
        flags.append("schedulable")
    if r["break_glass_allowed"]:
        flags.append("break-glass")
    if r["open_grant_id"]:
        flags.append(f"extends grant {r['open_grant_id']}")
    return ", ".join(flags)


def cmd_resources(args: argparse.Namespace) -> int:
    rows = _api(args).get("/resources")
    text = table(
        ["RESOURCE", "NAME", "DURATIONS", "APPROVALS", "FLAGS"],
        [
            [
                r["slug"],
                r["name"],
                ",".join(minutes_text(m) for m in r["durations_minutes"]),
                str(r["approvals_required"]),
                _flags(r),
            ]
            for r in rows
        ],
    )
    emit(rows, args.json, text or "There is nothing you may request.")
    return OK


def _request_line(req: dict[str, Any]) -> str:
    grant = req.get("grant")
    what = f"Request {req['id']} ({req['kind']}) for {req['resource_name']}: {req['state']}"
    if req["state"] == "pending":
        what += f", {req['approvals']}/{req['approvals_required']} approvals"
    elif req["state"] in ("rejected", "cancelled") and req["decision_reason"]:
        what += f" ({req['decision_reason']})"
    if grant:
        what += "\n" + _grant_line(grant)
    return what


def _grant_line(g: dict[str, Any]) -> str:
    return (
        f"Grant {g['id']} on {g['resource_name']}: {g['state']}, {g['access']['label']}, "
        f"{local(g['not_before'])} → {local(g['expires_at'])}"
    )


def cmd_request(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {
        "resource": args.resource,
        "duration_minutes": args.duration,
        "justification": args.reason,
        "ticket": args.ticket or "",
    }
    if args.at:
        body["start_at"] = rfc3339(args.at)
    # One key per invocation: the retry below can never file a second request.
    key = args.idempotency_key or str(uuid.uuid4())
    api = _api(args)
    try:
        req = api.post("/requests", body, headers={"Idempotency-Key": key})
    except CliError as exc:
        if exc.code != FAILED:
            raise
        time.sleep(1)
        req = api.post("/requests", body, headers={"Idempotency-Key": key})
    hint = "" if req["state"] != "pending" else f"\nWait for it: jit wait {req['id']}"
    emit(req, args.json, _request_line(req) + hint)
    return OK


def cmd_status(args: argparse.Namespace) -> int:
    api = _api(args)
    if args.id is not None:
        req = api.get(f"/requests/{args.id}")
        emit(req, args.json, _request_line(req))
        return OK
    grants = api.get_all("/grants", open="true")
    requests_ = api.get("/requests", limit=args.limit)
    grant_rows = [
        [
            str(g["id"]),
            g["resource"],
            g["state"],
            g["access"]["label"],
            local(g["not_before"]),
            local(g["expires_at"]),
            until_text(g["expires_at"]),
        ]
        for g in grants
    ]
    request_rows = [
        [
            str(r["id"]),
            r["resource"],
            r["kind"],
            r["state"],
            minutes_text(r["approved_duration_minutes"] or r["duration_minutes"]),
            local(r["created_at"]),
        ]
        for r in requests_
    ]
    text = "\n\n".join(
        part
        for part in (
            table(["GRANT", "RESOURCE", "STATE", "ACCESS", "FROM", "UNTIL", "LEFT"], grant_rows),
            table(["REQUEST", "RESOURCE", "KIND", "STATE", "FOR", "CREATED"], request_rows),
        )
        if part
    )
    emit({"grants": grants, "requests": requests_}, args.json, text or "No requests yet.")
    return OK


def _wait_state(req: dict[str, Any], now: datetime) -> tuple[str, int | None]:
    """(progress text, exit code once final or None while waiting)."""
    grant = req.get("grant")
    state = req["state"]
    if state == "pending":
        return f"waiting for approval ({req['approvals']}/{req['approvals_required']})", None
    if state != "approved":
        reason = f": {req['decision_reason']}" if req["decision_reason"] else ""
        return f"request {state}{reason}", ENDED
    if grant is None:
        return "approved; waiting for the grant", None
    # The portal's one answer to "can I get in now?": only "allowed" ends the wait.
    access = grant["access"]
    if access["state"] == "allowed":
        return access["label"], OK
    if access["state"] == "ended":
        return f"{access['label']}: {access['detail']}" if access["detail"] else "ended", ENDED
    return f"approved; {access['label']}", None


def cmd_wait(args: argparse.Namespace) -> int:
    api = _api(args)
    deadline = time.monotonic() + args.timeout * 60
    tty = sys.stderr.isatty()
    last = ""
    req: dict[str, Any] = {}
    while True:
        try:
            req = api.get(f"/requests/{args.id}")
            text, code = _wait_state(req, datetime.now(UTC))
        except CliError as exc:
            if exc.code != FAILED:  # the portal said no: waiting will not help
                raise
            text, code = f"portal unreachable ({exc.message}); retrying", None
        if text != last:
            if tty:
                sys.stderr.write("\r\033[K" + shown(text))
            else:
                sys.stderr.write(shown(text) + "\n")
            sys.stderr.flush()
            last = text
        if code is not None:
            break
        if time.monotonic() >= deadline:
            text, code = f"still not live after {minutes_text(args.timeout)}", TIMED_OUT
            break
        time.sleep(args.interval)
    if tty:
        sys.stderr.write("\n")
    emit(req, args.json, f"Request {args.id}: {text}")
    return code


def cmd_cancel(args: argparse.Namespace) -> int:
    req = _api(args).post(f"/requests/{args.id}/cancel", {})
    emit(req, args.json, _request_line(req))
    return OK


def cmd_end(args: argparse.Namespace) -> int:
    grant = _api(args).post(f"/grants/{args.grant}/end", {})
    emit(grant, args.json, _grant_line(grant))
    return OK


def cmd_extend(args: argparse.Namespace) -> int:
    api = _api(args)
    grant = api.get(f"/grants/{args.grant}")
    mine = grant["email"].lower() == api.session.email.lower()
    if mine and not args.until:
        if args.duration is None:
            fail("Say how much longer: --for 30m.", USAGE)
        req = api.post(
            f"/grants/{args.grant}/extension-requests",
            {"duration_minutes": args.duration, "justification": args.reason or ""},
        )
        emit(req, args.json, _request_line(req) + f"\nWait for it: jit wait {req['id']}")
        return OK
    if not args.reason:
        fail("Extending someone's grant needs --reason.", USAGE)
    current = parse_instant(grant["expires_at"])
    assert current is not None
    if args.until:
        new_end = args.until
    elif args.duration is not None:
        new_end = current + timedelta(minutes=args.duration)
    else:
        fail("Say how much longer (--for 30m) or until when (--until TIME).", USAGE)
    body = {"expires_at": rfc3339(new_end), "reason": args.reason, "override": args.override}
    grant = api.post(f"/grants/{args.grant}/extend", body)
    emit(grant, args.json, _grant_line(grant))
    return OK


# --- approvers -------------------------------------------------------------------------------


def cmd_pending(args: argparse.Namespace) -> int:
    rows = _api(args).get_all("/pending")
    text = table(
        ["REQUEST", "REQUESTER", "RESOURCE", "KIND", "FOR", "APPROVALS", "ASKED", "WHY"],
        [
            [
                str(r["id"]),
                r["requester"],
                r["resource"],
                r["kind"],
                minutes_text(r["duration_minutes"]),
                f"{r['approvals']}/{r['approvals_required']}" + (" (you)" * r["approved_by_me"]),
                local(r["created_at"]),
                (r["justification"][:40] + "…")
                if len(r["justification"]) > 40
                else r["justification"],
            ]
            for r in rows
        ],
    )
    emit(rows, args.json, text or "Nothing waits for your decision.")
    return OK


def cmd_approve(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"note": args.note or ""}
    if args.duration is not None:
        body["duration_minutes"] = args.duration
    result = _api(args).post(f"/requests/{args.id}/approve", body)
    req, grant = result["request"], result["grant"]
    text = (
        _request_line(req)
        if grant
        else (
            f"Approval recorded for request {req['id']}: "
            f"{req['approvals']}/{req['approvals_required']} approvals."
        )
    )
    emit(result, args.json, text)
    return OK


def cmd_reject(args: argparse.Namespace) -> int:
    req = _api(args).post(f"/requests/{args.id}/reject", {"reason": args.reason})
    emit(req, args.json, _request_line(req))
    return OK


def cmd_revoke(args: argparse.Namespace) -> int:
    grant = _api(args).post(f"/grants/{args.grant}/revoke", {"reason": args.reason})
    emit(grant, args.json, _grant_line(grant))
    return OK


# --- parser ----------------------------------------------------------------------------------


def _duration(text: str) -> int:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _time(text: str) -> datetime:
    try:
        return parse_time(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _object_id(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 2**31:
        raise argparse.ArgumentTypeError(f"{text!r} is not an id like 12")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print JSON for scripts")
    common.add_argument(
        "--url",
        default=os.environ.get("JIT_URL") or None,
        help="the portal's URL (default: the one you logged in to; env JIT_URL)",
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
    p.add_argument("--port", type=int, default=0, help="local callback port (default: any)")
    p.add_argument("--timeout", type=float, default=300, help="seconds to wait for sign-in")
    add("logout", cmd_logout, "Forget the stored session.")
    add("resources", cmd_resources, "The resources you may request, with durations and flags.")

    p = add("request", cmd_request, "Ask for access to a resource.")
    p.add_argument("resource", help="the resource's slug (see `jit resources`)")
    p.add_argument("--for", dest="duration", type=_duration, required=True, help="e.g. 1h, 30m")
    p.add_argument("--reason", required=True, help="why you need access")
    p.add_argument("--ticket", help="a ticket reference, e.g. INC-1234")
    p.add_argument("--at", type=_time, help="start later: ISO time, local unless it has a zone")
    p.add_argument("--idempotency-key", help="reuse to retry safely (default: a fresh one)")

    p = add("status", cmd_status, "Your live grants and recent requests, or one request.")
    p.add_argument("id", nargs="?", type=_object_id, help="a request id")
    p.add_argument("--limit", type=int, default=20, help="how many requests (default 20)")

    p = add("wait", cmd_wait, "Block until the request's grant is live in Pomerium.")
    p.add_argument("id", type=_object_id, help="the request id `jit request` printed")
    p.add_argument("--timeout", type=_duration, default=5, help="give up after (default 5m)")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between checks")

    p = add("cancel", cmd_cancel, "Withdraw your pending request.")
    p.add_argument("id", type=_object_id, help="the request id")
    p = add("end", cmd_end, "End your own access now.")
    p.add_argument("grant", type=_object_id, help="the grant id")

    p = add(
        "extend",
        cmd_extend,
        "Your grant: ask for more time (an extension request). Someone else's (approvers): "
        "move its end now.",
    )
    p.add_argument("grant", type=_object_id, help="the grant id")
    p.add_argument("--for", dest="duration", type=_duration, help="how much longer, e.g. 30m")
    p.add_argument("--until", type=_time, help="approvers: the new end (ISO time)")
    p.add_argument("--reason", help="why (required for approvers)")
    p.add_argument("--override", action="store_true", help="approvers: past the maximum")

    add("pending", cmd_pending, "Approvers: the requests waiting for your decision.")
    p = add("approve", cmd_approve, "Approvers: approve a request.")
    p.add_argument("id", type=_object_id, help="the request id")
    p.add_argument("--for", dest="duration", type=_duration, help="shorten to, e.g. 30m")
    p.add_argument("--note", help="a note for the requester")
    p = add("reject", cmd_reject, "Approvers: reject a request.")
    p.add_argument("id", type=_object_id, help="the request id")
    p.add_argument("--reason", required=True, help="shown to the requester")
    p = add("revoke", cmd_revoke, "Approvers: revoke a grant now.")
    p.add_argument("grant", type=_object_id, help="the grant id")
    p.add_argument("--reason", required=True, help="why")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
