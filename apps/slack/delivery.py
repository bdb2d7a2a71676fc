"""A request's Slack message, kept in step with the request through the notifications outbox.

``on_domain_event`` (connected in ``SlackConfig.ready``) stores one outbox row (channel
``slackapp``) per event of a request whose resource names a ``slack_channel``; the row's
dedup key holds the hash of the message as it stands, so the same state is stored once.
The outbox delivers the row with ``send`` (registered for that channel), and retries it as
it retries mail: transient failures (Slack's 429 with Retry-After, 5xx, timeouts) later,
permanent ones (a wrong channel, a revoked token) recorded on the row.

``send`` renders the request as it stands at delivery, so rows delivered late or out of
order never put an old state back. It holds the request's ``SlackMessage`` row locked
while it talks to Slack: the first delivery posts (``chat.postMessage``) and stores the
message's ``ts``; every later one updates it (``chat.update``), and skips the call when
the content is what was last sent. A request is posted once. The one exception Slack
leaves open: a post whose answer is lost (a timeout after Slack took it) is posted again
on the retry, since Slack offers no idempotency key for ``chat.postMessage``.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.access.models import AccessRequest, Grant
from apps.notifications import services as outbox
from apps.notifications.messages import Message
from apps.notifications.models import Channel, Notification

from . import client
from .messages import request_message
from .models import SlackMessage

log = logging.getLogger(__name__)


def _request_of(ids: dict[str, Any]) -> AccessRequest | None:
    request_id = ids.get("request_id")
    if request_id is None and ids.get("grant_id") is not None:
        request_id = (
            Grant.objects.filter(pk=ids["grant_id"]).values_list("request_id", flat=True).first()
        )
    if request_id is None:
        return None
    return (
        AccessRequest.objects.select_related(
            "resource", "requester", "filed_by", "decided_by", "level", "approved_level"
        )
        .filter(pk=request_id)
        .first()
    )


def plan(event: str, ids: dict[str, Any]) -> Message | None:
    """The outbox row for ``event``: None when the request's resource has no Slack channel
    (and never posted there), or the Slack app is not configured."""
    if not client.configured():
        return None
    req = _request_of(ids)
    if req is None:
        return None
    posted = SlackMessage.objects.filter(request=req).exclude(ts="").exists()
    if not req.resource.slack_channel and not posted:
        return None
    rendered = request_message(req)
    return Message(
        event=event,
        channel=Channel.SLACK_APP,
        recipient=f"slack:{req.resource.slug}",
        subject=rendered.text[:255],
        body=rendered.text,
        payload=rendered.payload(),
        request_id=req.pk,
        # The same event for the same state is stored once (a redelivered signal).
        occasion=rendered.fingerprint,
    )


def on_domain_event(sender: Any, *, event: str, ids: dict[str, Any], **_: Any) -> None:
    """Store the row of the request's message update; sending is the outbox's task."""
    try:
        message = plan(event, ids)
        if message is not None:
            outbox.store([message])
    except Exception:
        # The decision that raised the event stands whatever happens here.
        log.exception("could not store the Slack message update for %s %s", event, ids)


def send(note: Notification) -> None:
    """Post or update the message of ``note.request`` (the outbox's sender for ``slackapp``)."""
    if note.request_id is None:
        raise outbox.DeliveryError("the request is gone", permanent=True)
    with transaction.atomic():
        req = (
            AccessRequest.objects.select_related(
                "resource", "requester", "filed_by", "decided_by", "level", "approved_level"
            )
            .filter(pk=note.request_id)
            .first()
        )
        if req is None:
            raise outbox.DeliveryError("the request is gone", permanent=True)
        message, _ = SlackMessage.objects.select_for_update().get_or_create(
            request=req, defaults={"channel": req.resource.slack_channel}
        )
        if not message.channel:
            raise outbox.DeliveryError("the resource has no Slack channel", permanent=True)
        rendered = request_message(req)
        if message.ts and message.fingerprint == rendered.fingerprint:
            return  # Slack already shows exactly this
        now = timezone.now()
        try:
            if message.ts:
                client.call(
                    "chat.update",
                    channel=message.channel,
                    ts=message.ts,
                    text=rendered.text,
                    blocks=rendered.blocks,
                )
                message.updated_at = now
            else:
                answer = client.call(
                    "chat.postMessage",
                    channel=message.channel,
                    text=rendered.text,
                    blocks=rendered.blocks,
                    unfurl_links=False,
                    unfurl_media=False,
                )
                ts = answer.get("ts")
                if not isinstance(ts, str) or not ts:
                    raise outbox.DeliveryError("Slack's answer has no message ts", permanent=True)
                message.ts = ts
                message.channel = str(answer.get("channel") or message.channel)
                message.posted_at = now
        except client.SlackFailure as exc:
            raise outbox.DeliveryError(
                str(exc), permanent=exc.permanent, retry_after=exc.retry_after
            ) from None
        message.fingerprint = rendered.fingerprint
        message.save()
