"""The API's requests and grants as a terminal shows them, and which grant an id names.

Whether a grant lets its holder in now is the portal's answer, never this client's: every
grant carries ``access`` (docs/api.md, "Can I get in now?")::

    {"state": "allowed" | "opens" | "waiting" | "error" | "ended", "label": str,
     "until": RFC 3339 | null, "opens_at": RFC 3339 | null, "detail": str | null}

``jit status`` prints its ``label`` (and ``detail``); ``jit wait`` waits for ``allowed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .client import Api
from .core import CONFLICT, FAILED, REFUSED, USAGE, CliError, fail, local, say, until_text

ALLOWED, OPENS, WAITING, ERROR, ENDED = "allowed", "opens", "waiting", "error", "ended"
ACCESS_STATES = (ALLOWED, OPENS, WAITING, ERROR, ENDED)


# --- Can I get in now? -----------------------------------------------------------------------


def access(grant: dict[str, Any]) -> dict[str, Any]:
    """The grant's ``access`` answer; a one-line failure if the portal gave none."""
    found = grant.get("access")
    if (
        not isinstance(found, dict)
        or found.get("state") not in ACCESS_STATES
        or not isinstance(found.get("label"), str)
    ):
        fail(
            "The portal did not say whether this grant lets anyone in now; it may be older "
            "than this jit.",
            FAILED,
        )
    return found


def access_text(grant: dict[str, Any]) -> str:
    """``Allowed now, until 17:00 CET``, or ``Waiting for Pomerium (The rule is written…)``."""
    answer = access(grant)
    detail = answer.get("detail")
    return f"{answer['label']} ({detail})" if detail else str(answer["label"])


def time_left(grant: dict[str, Any]) -> str:
    """How long the holder still gets in (``1h59m left``): only while access is allowed."""
    answer = access(grant)
    return until_text(answer.get("until")) if answer["state"] == ALLOWED else "—"


# --- One line each ---------------------------------------------------------------------------


def grant_line(g: dict[str, Any]) -> str:
    return (
        f"Grant {g['id']} on {g['resource_name']}: {g['state']}, {access_text(g)}, "
        f"{local(g['not_before'])} → {local(g['expires_at'])}"
    )


def request_line(req: dict[str, Any]) -> str:
    """The request, its outcome (``Approved → revoked by …``) and its grant, if any."""
    state = req["state"]
    what = f"Request {req['id']} ({req['kind']}) for {req['resource_name']}: "
    if state == "pending":
        what += f"pending, {req['approvals']}/{req['approvals_required']} approvals"
    else:
        what += str(req.get("outcome") or state)
        reason = req.get("decision_reason") or ""
        if state in ("rejected", "cancelled") and reason:
            what += f" ({reason})"
    if req.get("auto_approval_note"):
        what += "\n" + req["auto_approval_note"]
    if state == "pending":
        what += "".join("\n" + line for line in stage_lines(req))
    if req.get("grant"):
        what += "\n" + grant_line(req["grant"])
    return what


def stage_lines(req: dict[str, Any]) -> list[str]:
    """A single request's stages (the API sends them with one request, not in lists) and,
    while it waits, who can approve each stage now."""
    stages = req.get("stages") or []
    lines = []
    for stage in stages:
        name = f"Stage {stage['number']} ({stage['name']})" if len(stages) > 1 else "Approvals"
        line = f"  {name}: {len(stage['approvers'])}/{stage['count']}"
        if stage["complete"]:
            line += " done"
        else:
            who = ", ".join(stage["can_approve"]) or "nobody right now"
            line += f", can approve now: {who}"
        lines.append(line)
    return lines


# --- Which grant an id names -----------------------------------------------------------------
# Requests and grants are numbered apart, and people hold both numbers: `jit request` says
# "Request 12", `jit status` lists "GRANT 40". A command about a grant takes either: g40,
# r12, or a bare 12 when only one of request 12 and grant 12 exists for this person.


@dataclass(frozen=True)
class Ref:
    """An id as typed: ``kind`` is "grant", "request" or "" (either)."""

    kind: str
    number: int


REF_FORMS = "12, g12 (a grant) or r12 (a request)"


def parse_ref(text: str) -> Ref:
    cleaned = text.strip().lower()
    kind = {"g": "grant", "r": "request"}.get(cleaned[:1], "")
    digits = cleaned[1:] if kind else cleaned
    if not digits.isdigit() or not 0 < int(digits) < 2**31:
        raise ValueError(f"{text!r} is not an id like {REF_FORMS}")
    return Ref(kind, int(digits))


def _get_or_none(api: Api, path: str) -> dict[str, Any] | None:
    try:
        found = api.get(path)
    except CliError as exc:
        if exc.code != REFUSED:  # not "no such object": the portal or the network failed
            raise
        return None
    return found if isinstance(found, dict) else None


def _describe(grant: dict[str, Any]) -> str:
    return f"grant {grant['id']} ({grant['resource_name']}, {grant['email']})"


def _grant_of_request(req: dict[str, Any]) -> dict[str, Any]:
    grant = req.get("grant")
    if not isinstance(grant, dict):
        fail(f"Request {req['id']} has no grant (it is {req['state']}).", CONFLICT)
    return grant


def resolve_grant(api: Api, ref: Ref) -> dict[str, Any]:
    """The grant ``ref`` names, saying on stderr which it took.

    A bare number that is both a request and a grant this person may see is refused (exit
    2) until they say g12 or r12, unless that request's grant is that very grant: acting on
    the wrong person's access is worse than asking.
    """
    n = ref.number
    grant = _get_or_none(api, f"/grants/{n}") if ref.kind in ("grant", "") else None
    req = _get_or_none(api, f"/requests/{n}") if ref.kind in ("request", "") else None
    if grant is None and req is None:
        what = {"grant": "grant", "request": "request"}.get(ref.kind, "request or grant")
        fail(f"No {what} {n} that you may see.", REFUSED)
    if req is None:
        assert grant is not None
        if not ref.kind:
            say(f"{n} is {_describe(grant)}.")
        return grant
    via_request = _grant_of_request(req) if grant is None or req.get("grant") else None
    if grant is not None and (via_request is None or via_request["id"] != grant["id"]):
        other = f"request {n} ({req['resource_name']}, {req['requester']})"
        fail(f"{n} names both {other} and {_describe(grant)}: say r{n} or g{n}.", USAGE)
    assert via_request is not None
    say(f"Request {n} → {_describe(via_request)}.")
    return via_request
