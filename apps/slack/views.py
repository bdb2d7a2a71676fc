"""``POST /slack/interactions``: Slack's interactivity Request URL.

Reached without a Pomerium assertion (``ASSERTION_EXEMPT_PATHS``): Slack proves itself by
signing each request (``verify``), and nothing is read from the body before that holds.
Answers Slack within its 3 seconds: 200 with an empty body for a button (the ephemeral
reply goes through ``response_url``), the dialog's errors for a refused submission, 401
for anything not signed by Slack, 503 when the signing secret is not configured.
"""

from __future__ import annotations

import json
import logging

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from apps.audit import context
from apps.audit.services import record_now

from . import interactions
from .actions import SlackAction
from .verify import Unverified, verify

log = logging.getLogger(__name__)


def _payload(body: bytes) -> object:
    from django.http import QueryDict

    raw = QueryDict(body, encoding="utf-8").get("payload")
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _refused(exc: Unverified, request: HttpRequest, body: bytes) -> HttpResponse:
    details: dict[str, object] = {"reason": exc.code, "message": str(exc)}
    payload = _payload(body) if exc.authentic else None
    response_url = ""
    if isinstance(payload, dict):
        user = payload.get("user")
        user_id = user.get("id", "") if isinstance(user, dict) else ""
        details["slack"] = {"user_id": str(user_id)[:32]}
        response_url = str(payload.get("response_url") or "")[:1000]
    record_now(SlackAction.INTERACTION_REFUSED, details=details)
    log.warning("Slack interaction refused: %s", exc.code)
    if exc.code == "not_configured":
        return HttpResponse("Slack is not configured.\n", status=503, content_type="text/plain")
    if not exc.authentic:
        # No reply through response_url: unsigned, it is whatever the sender wrote.
        return HttpResponse("Not signed by Slack.\n", status=401, content_type="text/plain")
    # Signed by Slack but stale or replayed: its response_url is Slack's own.
    interactions.reply(response_url, f"Nothing was done: {exc}")
    return HttpResponse(status=200)


@csrf_exempt  # Slack cannot send a CSRF token; its signature is checked instead
@require_POST
def slack_interactions(request: HttpRequest) -> HttpResponse:
    context.update(channel="slack")
    try:
        body = request.body
    except RequestDataTooBig:
        return HttpResponse("Too large.\n", status=413, content_type="text/plain")
    now = timezone.now()
    try:
        verify(
            body,
            timestamp=request.headers.get("X-Slack-Request-Timestamp"),
            signature=request.headers.get("X-Slack-Signature"),
            now=now,
        )
    except Unverified as exc:
        return _refused(exc, request, body)
    outcome = interactions.handle(_payload(body), now)
    if outcome.dialog_errors is not None:
        return JsonResponse({"response_action": "errors", "errors": outcome.dialog_errors})
    interactions.reply(outcome.response_url, outcome.reply)
    return HttpResponse(status=200)
