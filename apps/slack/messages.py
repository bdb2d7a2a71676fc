"""What the Slack app shows: a request's message (Block Kit), the reason dialog, the replies.

A request's message is rendered from the request's current state every time it is sent,
so posting and every update say the same thing for the same state, whichever event caused
them and in whatever order they arrive. While the request waits it carries Approve and
Reject buttons; once decided it says by whom, then whether the person can get in now
(``apps.access.reach``), or how the grant ended. Every user-supplied text is escaped
(``slack_escape``): it can make no link or mention. Times are UTC.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from apps.access import oncall, reach, stages
from apps.access.durations import duration_label
from apps.access.models import AccessRequest, Grant
from apps.access.states import GrantState, RequestKind, RequestState
from apps.notifications.messages import (
    admin_request_url,
    person,
    quote,
    slack_escape,
    utc_label,
)

APPROVE = "jit_approve"
REJECT = "jit_reject"
REASON_VIEW = "jit_reject_reason"
REASON_BLOCK = "reason"
REASON_INPUT = "reason_input"
TEXT_LIMIT = 2900  # a section's text takes at most 3000 characters


@dataclass(frozen=True)
class Rendered:
    """A message's content: the fallback ``text`` and the ``blocks``."""

    text: str
    blocks: list[dict[str, Any]]

    @property
    def fingerprint(self) -> str:
        raw = json.dumps({"text": self.text, "blocks": self.blocks}, sort_keys=True)
        return hashlib.sha256(raw.encode()).hexdigest()

    def payload(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": self.blocks}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:TEXT_LIMIT]}}


def _grant_of(req: AccessRequest) -> Grant | None:
    if req.kind == RequestKind.EXTENSION:
        return req.extends_grant
    return Grant.objects.filter(request=req).select_related("revoked_by").first()


def _what(req: AccessRequest) -> str:
    level = req.effective_level
    what = "an extension of access to" if req.kind == RequestKind.EXTENSION else "access to"
    if req.kind == RequestKind.BREAK_GLASS:
        what = "break-glass access to"
    text = f"{what} *{slack_escape(req.resource.name)}*"
    if level is not None:
        text += f" at the level *{slack_escape(level.name)}*"
    return text


def _window(req: AccessRequest) -> str:
    minutes = req.approved_duration_minutes or req.duration_minutes
    start = f"starting {utc_label(req.start_at)}" if req.start_at else "starting when approved"
    return f"*Window:* {duration_label(minutes)}, {start}"


def _approvals(req: AccessRequest) -> list[str]:
    """The approvals so far, per stage, and while it waits, who can approve now."""
    approvals = list(req.approvals.select_related("approver").order_by("pk"))
    states, _ = stages.progress(req, approvals)
    names = {a.approver.email: person(a.approver) for a in approvals}
    lines = []
    for state in states:
        head = (
            "*Approvals:*"
            if len(states) == 1
            else (f"*Stage {state.stage.number}, {slack_escape(state.stage.name)}:*")
        )
        line = f"{head} {len(state.approvers)} of {state.stage.count}"
        if state.approvers:
            line += " (" + ", ".join(slack_escape(names.get(e, e)) for e in state.approvers) + ")"
        if len(states) > 1 and state.complete:
            line += " :white_check_mark:"
        lines.append(line)
    if req.state == RequestState.PENDING:
        for state, people in stages.who_can_approve(req):
            where = "" if len(states) == 1 else f" (stage {state.stage.number})"
            who = ", ".join(slack_escape(person(p)) for p in people) or "nobody right now"
            lines.append(f"*Can approve now{where}:* {who}")
            break  # only the stage that waits first can be approved now
    return lines


def _outcome(req: AccessRequest, grant: Grant | None) -> str:
    """One line: where the request stands now."""
    if req.state == RequestState.PENDING:
        return ":hourglass_flowing_sand: *Waiting for approval.*"
    if req.state == RequestState.REJECTED:
        line = f":no_entry: *Rejected by {slack_escape(person(req.decided_by))}.*"
        if req.decision_reason:
            line += f" Reason: {quote(req.decision_reason)}"
        return line
    if req.state == RequestState.CANCELLED:
        return ":heavy_minus_sign: *Cancelled by the requester.*"
    if req.state == RequestState.EXPIRED:
        return ":heavy_minus_sign: *Expired: nobody decided in time.*"
    if req.kind == RequestKind.BREAK_GLASS:
        decided = ":rotating_light: *Break-glass: self-activated, needs review.*"
    elif req.auto_approved_rule:
        decided = ":white_check_mark: *Auto-approved* " + slack_escape(
            _rule_words(req.auto_approved_rule)
        )
    else:
        decided = f":white_check_mark: *Approved by {slack_escape(person(req.decided_by))}.*"
    if grant is None:
        return decided
    if grant.state == GrantState.REVOKED:
        when = utc_label(grant.revoked_at) if grant.revoked_at else ""
        return decided + (
            f" Revoked by {slack_escape(person(grant.revoked_by))} {when}."
            if grant.revoked_by_id
            else f" Revoked {when}."
        )
    if grant.state == GrantState.EXPIRED:
        return decided + f" Access ended {utc_label(grant.expires_at)}."
    # The one answer to "can they get in right now?" (apps.access.reach), as of this render:
    # a message is re-rendered on every change, but not as the clock moves.
    now = timezone.now()
    answer = reach.access(grant, now=now)
    return decided + f" {answer.label} (as of {utc_label(now)})."


def _rule_words(rule: dict[str, Any]) -> str:
    minutes = rule.get("max_minutes")
    who = oncall.who(rule)
    return f"(rule: {who}, up to {duration_label(int(minutes))})." if minutes else f"({who})."


def request_message(req: AccessRequest) -> Rendered:
    """The message of ``req`` as it stands now (re-read by the caller)."""
    grant = _grant_of(req)
    requester = slack_escape(person(req.requester))
    head = f"*Request #{req.pk}:* {requester} asks for {_what(req)}"
    if req.filed_by_id != req.requester_id:
        head += f" (filed by {slack_escape(person(req.filed_by))})"
    lines = [head, _window(req)]
    if req.justification:
        lines.append(f"*Why:* {quote(req.justification)}")
    if req.ticket:
        lines.append(f"*Ticket:* {quote(req.ticket, 120)}")
    if req.kind != RequestKind.BREAK_GLASS and (
        req.state == RequestState.PENDING or req.approvals.exists()
    ):
        lines.extend(_approvals(req))
    blocks: list[dict[str, Any]] = [_section("\n".join(lines)), _section(_outcome(req, grant))]
    elements: list[dict[str, Any]] = []
    if req.state == RequestState.PENDING:
        elements += [
            {
                "type": "button",
                "action_id": APPROVE,
                "text": {"type": "plain_text", "text": "Approve"},
                "style": "primary",
                "value": str(req.pk),
            },
            {
                "type": "button",
                "action_id": REJECT,
                "text": {"type": "plain_text", "text": "Reject"},
                "style": "danger",
                "value": str(req.pk),
            },
        ]
    elements.append(
        {
            "type": "button",
            "action_id": "jit_open",
            "text": {"type": "plain_text", "text": "Open in the portal"},
            "url": admin_request_url(req),
        }
    )
    blocks.append({"type": "actions", "block_id": f"jit_request_{req.pk}", "elements": elements})
    state = req.get_state_display().lower()
    text = (
        f"Request #{req.pk}: {person(req.requester)} asks for access to "
        f"{req.resource.name} ({state})"
    )
    return Rendered(text=text[:3000], blocks=blocks)


def reason_dialog(req: AccessRequest, private_metadata: str) -> dict[str, Any]:
    """The modal (``views.open``) that asks a rejecting approver why."""
    return {
        "type": "modal",
        "callback_id": REASON_VIEW,
        "private_metadata": private_metadata,
        "title": {"type": "plain_text", "text": f"Reject #{req.pk}"[:24]},
        "submit": {"type": "plain_text", "text": "Reject"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            _section(
                f"{slack_escape(person(req.requester))} asked for {_what(req)}. "
                "The requester sees your reason."
            ),
            {
                "type": "input",
                "block_id": REASON_BLOCK,
                "label": {"type": "plain_text", "text": "Why is it rejected?"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": REASON_INPUT,
                    "multiline": True,
                    "max_length": 2000,
                },
            },
        ],
    }
