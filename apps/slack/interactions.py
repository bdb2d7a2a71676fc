"""What a verified click in Slack does: find the portal person behind it, then decide as them.

Identity binding: the clicking Slack user's email is read from Slack with ``users.info``
(scope ``users:read.email``), never from the payload. The user must exist, be neither
deleted nor a bot, and have a confirmed email; the email must normalise
(``apps.accounts.emails.normalize_email``) to an active portal person. That person then
decides through the same service as the admin (``approve_request`` / ``reject_request``),
so the same rules hold: nobody decides their own request under any alias, only current
approvers count toward the quorum, the request must still be pending.

* **Approve** decides at once (a quorum may need more approvals: the reply says so).
* **Reject** opens a dialog (``views.open``) asking for the reason, after checking that
  the clicker may decide; the rejection happens on its ``view_submission``.

Whatever is refused changes nothing, is audited (``slack.interaction_refused``) and is
answered: an ephemeral message through the payload's ``response_url`` for a button, an
error in the dialog for a submission. A decision's own audit entries carry ``channel:
slack`` and ``slack: {user_id, team_id, channel_id, message_ts}``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from slack_sdk.webhook import WebhookClient

from apps.access import services
from apps.access.models import AccessRequest
from apps.accounts.emails import normalize_email
from apps.audit import context
from apps.audit.services import record_now

from . import client
from .actions import SlackAction
from .messages import APPROVE, REASON_BLOCK, REASON_INPUT, REASON_VIEW, REJECT, reason_dialog

log = logging.getLogger(__name__)

REPLY_TIMEOUT_SECONDS = 3
# The trail's codes for what the services refuse.
_CODES = {
    "NotAllowed": "not_allowed",
    "IllegalTransition": "not_pending",
    "PolicyViolation": "policy",
    "Conflict": "conflict",
}


class Refused(Exception):
    """The click is not acted on. ``code`` for the trail, ``str(exc)`` for the clicker."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Click:
    """The parts of a Slack interaction payload the portal uses."""

    kind: str  # "approve", "reject" (the button) or "reason" (the dialog's submission)
    request_id: int
    user_id: str
    team_id: str = ""
    channel_id: str = ""
    message_ts: str = ""
    response_url: str = ""
    trigger_id: str = ""
    reason: str = ""
    person: Any = field(default=None, repr=False)

    def slack_details(self) -> dict[str, str]:
        return {
            "user_id": self.user_id,
            "team_id": self.team_id,
            "channel_id": self.channel_id,
            "message_ts": self.message_ts,
        }


def _obj(container: Any, key: str) -> dict[str, Any]:
    value = container.get(key) if isinstance(container, dict) else None
    return value if isinstance(value, dict) else {}


def _text(value: Any, limit: int = 200) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _request_id(value: Any) -> int:
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 19:
        return int(value)
    raise Refused("bad_payload", "This button does not name a request.")


def parse(payload: Any) -> Click:
    """Read a ``block_actions`` or ``view_submission`` payload; ``Refused`` if it is neither
    of the portal's."""
    if not isinstance(payload, dict):
        raise Refused("bad_payload", "Not an interaction payload.")
    user, team = _obj(payload, "user"), _obj(payload, "team")
    user_id = _text(user.get("id"), 32)
    if not user_id:
        raise Refused("bad_payload", "The payload names no Slack user.")
    team_id = _text(team.get("id"), 32) or _text(user.get("team_id"), 32)
    kind = payload.get("type")
    if kind == "block_actions":
        actions = payload.get("actions")
        action = actions[0] if isinstance(actions, list) and actions else {}
        action_id = action.get("action_id") if isinstance(action, dict) else None
        if action_id not in (APPROVE, REJECT):
            raise Refused("bad_payload", "That button is not one of the portal's.")
        container, channel = _obj(payload, "container"), _obj(payload, "channel")
        return Click(
            kind="approve" if action_id == APPROVE else "reject",
            request_id=_request_id(action.get("value")),
            user_id=user_id,
            team_id=team_id,
            channel_id=_text(container.get("channel_id"), 32) or _text(channel.get("id"), 32),
            message_ts=_text(container.get("message_ts"), 32),
            response_url=_text(payload.get("response_url"), 1000),
            trigger_id=_text(payload.get("trigger_id"), 200),
        )
    if kind == "view_submission":
        view = _obj(payload, "view")
        if view.get("callback_id") != REASON_VIEW:
            raise Refused("bad_payload", "That dialog is not one of the portal's.")
        try:
            meta = json.loads(_text(view.get("private_metadata"), 3000) or "{}")
        except ValueError:
            meta = None
        if not isinstance(meta, dict):
            raise Refused("bad_payload", "The dialog lost its request.")
        values = (
            (view.get("state") or {}).get("values") if isinstance(view.get("state"), dict) else {}
        )
        entry = ((values or {}).get(REASON_BLOCK) or {}).get(REASON_INPUT) or {}
        return Click(
            kind="reason",
            request_id=_request_id(str(meta.get("request", ""))),
            user_id=user_id,
            team_id=team_id,
            channel_id=_text(meta.get("channel"), 32),
            message_ts=_text(meta.get("message_ts"), 32),
            response_url=_text(meta.get("response_url"), 1000),
            reason=_text(entry.get("value"), 4000).strip(),
        )
    raise Refused("bad_payload", "The portal takes only its own buttons and dialog.")


def portal_person(user_id: str) -> Any:
    """The active portal person whose email Slack holds for ``user_id`` (``users.info``)."""
    try:
        answer = client.call("users.info", read=True, user=user_id)
    except client.SlackFailure as exc:
        if exc.error in ("user_not_found", "users_not_found"):
            raise Refused("unknown_slack_user", "Slack does not know your user.") from None
        log.warning("users.info failed for a click: %s", exc)
        raise Refused(
            "slack_unavailable", "The portal could not ask Slack who you are; try again."
        ) from None
    profile = _obj(answer, "user")
    email = _obj(profile, "profile").get("email")
    if profile.get("deleted") or profile.get("is_bot") or profile.get("is_app_user"):
        raise Refused("not_a_person", "Only people can decide requests.")
    if profile.get("is_email_confirmed") is False:
        raise Refused(
            "email_unconfirmed", "Your Slack email is not confirmed, so the portal cannot trust it."
        )
    if not isinstance(email, str) or not email:
        raise Refused("no_email", "Slack gave the portal no email for you.")
    key = normalize_email(email)
    person = get_user_model().objects.filter(email_key=key, is_active=True).first()
    if person is None:
        raise Refused(
            "unknown_person", "You have no portal account under your Slack email (" + email + ")."
        )
    return person


def _refuse(click: Click | None, exc: Refused, req: AccessRequest | None, raw_user: str) -> None:
    """Audit a refusal (nothing else changes)."""
    person = click.person if click is not None else None
    details: dict[str, Any] = {"reason": exc.code, "message": str(exc)}
    if click is not None:
        details["slack"] = click.slack_details()
        details["action"] = click.kind
    record_now(
        SlackAction.INTERACTION_REFUSED,
        actor=person,
        actor_label=None if person is not None else (f"slack:{raw_user}" if raw_user else None),
        target=req,
        resource_slug=req.resource.slug if req is not None else "",
        details=details,
    )


def reply(response_url: str, text: str) -> None:
    """An ephemeral message to the clicker (only they see it); failures are logged only."""
    if not response_url:
        return
    try:
        response = WebhookClient(response_url, timeout=REPLY_TIMEOUT_SECONDS).send(
            text=text, response_type="ephemeral", replace_original=False
        )
        if response.status_code != 200:
            log.warning("Slack refused an ephemeral reply (HTTP %s)", response.status_code)
    except Exception as exc:  # the reply is a courtesy; the click's outcome stands
        log.warning("could not send an ephemeral reply: %s", type(exc).__name__)


@dataclass
class Outcome:
    """What the view answers Slack, and the ephemeral reply to send after."""

    reply: str = ""
    response_url: str = ""
    dialog_errors: dict[str, str] | None = None


def handle(payload: Any, now: datetime) -> Outcome:
    """Act on a verified payload; never raises for anything the clicker did."""
    raw_user = ""
    if isinstance(payload, dict) and isinstance(payload.get("user"), dict):
        raw_user = _text(payload["user"].get("id"), 32)
    click: Click | None = None
    req: AccessRequest | None = None
    try:
        click = parse(payload)
        req = (
            AccessRequest.objects.select_related("resource", "requester")
            .filter(pk=click.request_id)
            .first()
        )
        if req is None:
            raise Refused("unknown_request", "The portal has no such request.")
        click.person = portal_person(click.user_id)
        return _decide(click, req, now)
    except Refused as exc:
        _refuse(click, exc, req, raw_user)
        if click is not None and click.kind == "reason":
            return Outcome(dialog_errors={REASON_BLOCK: f"You may not reject this: {exc}"[:150]})
        verb = "approve" if click is None or click.kind == "approve" else "reject"
        return Outcome(
            reply=f"You may not {verb} this: {exc}",
            response_url=click.response_url if click is not None else "",
        )


def _decide(click: Click, req: AccessRequest, now: datetime) -> Outcome:
    person = click.person
    context.update(channel="slack", channel_details=tuple(click.slack_details().items()))
    try:
        if click.kind == "approve":
            grant = services.approve_request(req, approver=person, now=now)
            if grant is None:
                return Outcome(
                    reply=f"Your approval of request #{req.pk} is recorded; it needs more "
                    "approvals before access is granted.",
                    response_url=click.response_url,
                )
            return Outcome(
                reply=f"You approved request #{req.pk}; access is being granted.",
                response_url=click.response_url,
            )
        if click.kind == "reject":
            services.check_decider(req, person, now=now)
            _open_dialog(click, req)
            return Outcome()
        if not click.reason:
            return Outcome(dialog_errors={REASON_BLOCK: "Say why the request is rejected."})
        services.reject_request(req, approver=person, reason=click.reason, now=now)
        return Outcome(reply=f"You rejected request #{req.pk}.", response_url=click.response_url)
    except services.AccessError as exc:
        raise Refused(_CODES.get(type(exc).__name__, "refused"), str(exc)) from None


def _open_dialog(click: Click, req: AccessRequest) -> None:
    meta = json.dumps(
        {
            "request": req.pk,
            "channel": click.channel_id,
            "message_ts": click.message_ts,
            "response_url": click.response_url,
        }
    )
    if len(meta) > 3000:  # Slack's limit for private_metadata
        meta = json.dumps(
            {"request": req.pk, "channel": click.channel_id, "message_ts": click.message_ts}
        )
    try:
        client.call("views.open", trigger_id=click.trigger_id, view=reason_dialog(req, meta))
    except client.SlackFailure as exc:
        log.warning("views.open failed: %s", exc)
        raise Refused(
            "dialog_failed",
            "Slack did not open the dialog in time; click Reject again "
            f"or reject in the portal ({settings.PORTAL_URL}).",
        ) from None
