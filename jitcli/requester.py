"""The requester's commands: resources, request, status, wait, cancel, end, extend."""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from . import objects
from .client import Api, connect
from .core import (
    CONFLICT,
    ENDED,
    FAILED,
    NOT_ENFORCED,
    OK,
    REFUSED,
    TIMED_OUT,
    USAGE,
    CliError,
    duration_text,
    emit,
    fail,
    local,
    minutes_text,
    parse_instant,
    rfc3339,
    shown,
    table,
)
from .objects import (
    ALLOWED,
    ERROR,
    OPENS,
    access,
    access_text,
    grant_line,
    request_line,
    resolve_grant,
    time_left,
)


def api_for(args: argparse.Namespace) -> Api:
    return connect(args.url)


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
    rows = api_for(args).get("/resources")
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
    api = api_for(args)
    try:
        try:
            req = api.post("/requests", body, headers={"Idempotency-Key": key})
        except CliError as exc:
            if exc.code != FAILED:
                raise
            time.sleep(1)
            req = api.post("/requests", body, headers={"Idempotency-Key": key})
    except CliError as exc:
        if exc.code == REFUSED and exc.message.startswith("No resource"):
            fail(f"{exc.message} `jit resources` lists the ones you may request.", REFUSED)
        opens = parse_instant(exc.fields.get("start_at")) if exc.code == CONFLICT else None
        if opens is not None and not args.at:
            # "Now" falls outside the resource's window: the portal names the next opening.
            at = opens.astimezone().isoformat(timespec="minutes")
            fail(f"{exc.said} To start then, add --at {at}.", CONFLICT)
        raise
    hint = "" if req["state"] != "pending" else f"\nWait for it: jit wait {req['id']}"
    emit(req, args.json, request_line(req) + hint)
    return OK


def cmd_status(args: argparse.Namespace) -> int:
    api = api_for(args)
    if args.id is not None:
        req = api.get(f"/requests/{args.id}")
        emit(req, args.json, request_line(req))
        return OK
    grants = api.get_all("/grants", open="true")
    requests_ = api.get("/requests", limit=args.limit)
    grant_rows = [
        [
            str(g["id"]),
            g["resource"],
            g["state"],
            access_text(g),
            local(g["not_before"]),
            local(g["expires_at"]),
            time_left(g),
        ]
        for g in grants
    ]
    request_rows = [
        [
            str(r["id"]),
            r["resource"],
            r["kind"],
            minutes_text(r["approved_duration_minutes"] or r["duration_minutes"]),
            local(r["created_at"]),
            str(r.get("outcome") or r["state"]),
        ]
        for r in requests_
    ]
    text = "\n\n".join(
        part
        for part in (
            table(["GRANT", "RESOURCE", "STATE", "ACCESS", "FROM", "UNTIL", "LEFT"], grant_rows),
            table(["REQUEST", "RESOURCE", "KIND", "FOR", "CREATED", "OUTCOME"], request_rows),
        )
        if part
    )
    emit({"grants": grants, "requests": requests_}, args.json, text or "No requests yet.")
    return OK


def wait_state(req: dict[str, Any]) -> tuple[str, int | None]:
    """(progress text, exit code once final, or None while waiting).

    Only the portal's ``allowed`` ends the wait with 0: a grant that opens later, or whose
    rule Pomerium has not confirmed, keeps it waiting.
    """
    state = req["state"]
    if state == "pending":
        return f"waiting for approval ({req['approvals']}/{req['approvals_required']})", None
    if state != "approved":
        reason = f": {req['decision_reason']}" if req["decision_reason"] else ""
        return f"request {state}{reason}", ENDED
    grant = req.get("grant")
    if grant is None:
        return "approved; waiting for the grant", None
    answer = access(grant)
    if answer["state"] == ALLOWED:
        return str(answer["label"]), OK
    if answer["state"] == objects.ENDED:
        return access_text(grant), ENDED
    if answer["state"] == ERROR:
        return access_text(grant), NOT_ENFORCED
    return f"approved; {access_text(grant)}", None


def cmd_wait(args: argparse.Namespace) -> int:
    api = api_for(args)
    deadline = time.monotonic() + args.timeout.total_seconds()
    tty = sys.stderr.isatty()
    last = ""
    req: dict[str, Any] = {}
    while True:
        try:
            req = api.get(f"/requests/{args.id}")
        except CliError as exc:
            if exc.code != FAILED:  # the portal said no: waiting will not help
                raise
            text, code = f"portal unreachable ({exc.message}); retrying", None
        else:
            text, code = wait_state(req)
        if text != last:
            sys.stderr.write(("\r\033[K" if tty else "") + shown(text) + ("" if tty else "\n"))
            sys.stderr.flush()
            last = text
        if code is None:
            code, text = _gives_up(req, text, deadline, args.timeout)
        if code is not None:
            break
        time.sleep(args.interval.total_seconds())
    if tty:
        sys.stderr.write("\n")
    emit(req, args.json, f"Request {args.id}: {text}")
    return code


def _gives_up(
    req: dict[str, Any], text: str, deadline: float, timeout: timedelta
) -> tuple[int | None, str]:
    """TIMED_OUT once the timeout passed, or at once when the grant opens only after it."""
    left = deadline - time.monotonic()
    grant = req.get("grant") if req.get("state") == "approved" else None
    answer = access(grant) if isinstance(grant, dict) else {}
    if answer.get("state") == OPENS:
        opens = parse_instant(answer.get("opens_at"))
        if opens is not None and (opens - datetime.now(UTC)).total_seconds() > left:
            return TIMED_OUT, f"{text}: later than the {duration_text(timeout)} timeout"
    if left <= 0:
        return TIMED_OUT, f"still not allowed after {duration_text(timeout)} ({text})"
    return None, text


def cmd_cancel(args: argparse.Namespace) -> int:
    req = api_for(args).post(f"/requests/{args.id}/cancel", {})
    emit(req, args.json, request_line(req))
    return OK


def cmd_end(args: argparse.Namespace) -> int:
    api = api_for(args)
    grant = resolve_grant(api, args.grant)
    ended = api.post(f"/grants/{grant['id']}/end", {})
    emit(ended, args.json, grant_line(ended))
    return OK


def cmd_extend(args: argparse.Namespace) -> int:
    api = api_for(args)
    grant = resolve_grant(api, args.grant)
    gid = grant["id"]
    mine = grant["email"].lower() == api.session.email.lower()
    if mine and not args.until:
        if args.duration is None:
            fail("Say how much longer: --for 30m.", USAGE)
        req = api.post(
            f"/grants/{gid}/extension-requests",
            {"duration_minutes": args.duration, "justification": args.reason or ""},
        )
        emit(req, args.json, request_line(req) + f"\nWait for it: jit wait {req['id']}")
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
    extended = api.post(f"/grants/{gid}/extend", body)
    emit(extended, args.json, grant_line(extended))
    return OK
