"""The approver's commands: pending, grants, approve, reject, revoke."""

from __future__ import annotations

import argparse
from typing import Any

from .core import OK, emit, local, minutes_text, table
from .objects import access_text, grant_line, request_line, resolve_grant
from .requester import api_for


def _short(text: str, width: int = 40) -> str:
    return text[:width] + "…" if len(text) > width else text


def cmd_pending(args: argparse.Namespace) -> int:
    rows = api_for(args).get_all("/pending")
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
                _short(r["justification"]),
            ]
            for r in rows
        ],
    )
    emit(rows, args.json, text or "Nothing waits for your decision.")
    return OK


def cmd_grants(args: argparse.Namespace) -> int:
    """The open grants (active or scheduled) of every resource this person may see."""
    rows: list[dict[str, Any]] = api_for(args).get_all("/grants", open="true", scope="all")
    if args.resource:
        rows = [g for g in rows if g["resource"] == args.resource]
    text = table(
        ["GRANT", "REQUEST", "WHO", "RESOURCE", "LEVEL", "ACCESS", "FROM", "UNTIL"],
        [
            [
                str(g["id"]),
                str(g["request_id"]),
                g["email"],
                g["resource"],
                g["level"] or "—",
                access_text(g),
                local(g["not_before"]),
                local(g["expires_at"]),
            ]
            for g in rows
        ],
    )
    where = f" on {args.resource}" if args.resource else ""
    emit(rows, args.json, text or f"No open grants{where} that you may see.")
    return OK


def cmd_approve(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"note": args.note or ""}
    if args.duration is not None:
        body["duration_minutes"] = args.duration
    result = api_for(args).post(f"/requests/{args.id}/approve", body)
    req, grant = result["request"], result["grant"]
    text = (
        request_line(req)
        if grant
        else (
            f"Approval recorded for request {req['id']}: "
            f"{req['approvals']}/{req['approvals_required']} approvals."
        )
    )
    emit(result, args.json, text)
    return OK


def cmd_reject(args: argparse.Namespace) -> int:
    req = api_for(args).post(f"/requests/{args.id}/reject", {"reason": args.reason})
    emit(req, args.json, request_line(req))
    return OK


def cmd_revoke(args: argparse.Namespace) -> int:
    api = api_for(args)
    grant = resolve_grant(api, args.grant)
    revoked = api.post(f"/grants/{grant['id']}/revoke", {"reason": args.reason})
    emit(revoked, args.json, grant_line(revoked))
    return OK
