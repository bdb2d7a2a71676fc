"""Delivering one stored notice: claim the row, send it, record the outcome.

``deliver(notification_id)`` claims the row with a conditional UPDATE (a lease), so two
deliveries of the same task send once; sends it by email, Slack's incoming webhook, or the
sender an adapter app registered for its channel (``channels``); records sent / failed on
the row; and tells the task (``tasks.send``) whether and when to retry.
"""

from __future__ import annotations

import logging
import smtplib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db.models import F
from django.utils import timezone

from apps.access.models import Resource

from . import channels, slack
from .models import Channel, Notification, Status

__all__ = ["MAX_ATTEMPTS", "Delivery", "DeliveryError", "backoff_seconds", "deliver"]

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
BACKOFF_BASE_SECONDS = 60  # 60, 120, 240, 480 s between the five attempts
BACKOFF_CAP_SECONDS = 900
# Longer than any send can take (SMTP and Slack time out well before), so a lease only
# runs out when its worker died.
LEASE = timedelta(minutes=5)
# Tolerates clock skew between the worker that scheduled a retry and the one running it.
CLOCK_GRACE = timedelta(seconds=5)
SMTP_TIMEOUT_SECONDS = 30
ERROR_LIMIT = 500


class DeliveryError(Exception):
    """Sending failed. ``str(exc)`` is a readable reason with no secret in it."""

    def __init__(self, message: str, *, permanent: bool, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after


@dataclass(frozen=True)
class Delivery:
    """What ``deliver`` did: ``sent``, ``failed``, ``retry`` (in ``retry_in`` s) or ``skipped``."""

    outcome: Literal["sent", "failed", "retry", "skipped"]
    retry_in: int | None = None


# --- Delivering ----------------------------------------------------------------------------


def backoff_seconds(attempts: int, retry_after: int | None = None) -> int:
    """Wait before attempt ``attempts + 1``: exponential, capped, at least Slack's Retry-After."""
    wait = min(BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0), BACKOFF_CAP_SECONDS)
    if retry_after:
        wait = min(max(wait, retry_after), BACKOFF_CAP_SECONDS)
    return wait


def deliver(notification_id: int, *, now: datetime | None = None) -> Delivery:
    """Send one notification, at most once per claim, and record the outcome on its row.

    Skips (``skipped``) when the row is gone, no longer pending, not yet due, or leased by
    another worker. Otherwise counts an attempt and sends; on success the row is ``sent``;
    on a permanent failure, or a transient one at the ``MAX_ATTEMPTS``-th attempt, the row
    is ``failed`` with a readable ``last_error``; on another transient failure the row
    stays pending with ``next_attempt_at`` set and the result says when to retry.
    """
    now = now or timezone.now()
    claimed = (
        Notification.objects.pending()
        .unclaimed_at(now)
        .filter(pk=notification_id, next_attempt_at__lte=now + CLOCK_GRACE)
        .update(claimed_until=now + LEASE, attempts=F("attempts") + 1)
    )
    if not claimed:
        return Delivery("skipped")
    note = Notification.objects.select_related("request__resource", "grant__resource").get(
        pk=notification_id
    )
    try:
        if note.channel == Channel.SLACK:
            _send_slack(note)
        elif note.channel == Channel.EMAIL:
            _send_email(note)
        else:
            _send_registered(note)
    except DeliveryError as exc:
        return _record_failure(note, exc, now)
    except Exception as exc:
        # A bug or an unforeseen backend error: retried like a transient one, but loudly.
        log.exception("notification %s: unexpected error while sending", note.pk)
        return _record_failure(
            note, DeliveryError(f"unexpected error ({type(exc).__name__})", permanent=False), now
        )
    Notification.objects.filter(pk=note.pk).update(
        status=Status.SENT, sent_at=now, claimed_until=None, last_error=""
    )
    log.info("notification %s sent (%s %s)", note.pk, note.channel, note.event)
    return Delivery("sent")


def _record_failure(note: Notification, exc: DeliveryError, now: datetime) -> Delivery:
    reason = str(exc)[:ERROR_LIMIT]
    if exc.permanent or note.attempts >= MAX_ATTEMPTS:
        if not exc.permanent:
            reason = f"gave up after {note.attempts} attempts: {reason}"[:ERROR_LIMIT]
        Notification.objects.filter(pk=note.pk).update(
            status=Status.FAILED, last_error=reason, claimed_until=None
        )
        log.warning("notification %s failed: %s", note.pk, reason)
        return Delivery("failed")
    wait = backoff_seconds(note.attempts, exc.retry_after)
    Notification.objects.filter(pk=note.pk).update(
        last_error=reason, claimed_until=None, next_attempt_at=now + timedelta(seconds=wait)
    )
    log.info(
        "notification %s attempt %s failed, retry in %ss: %s", note.pk, note.attempts, wait, reason
    )
    return Delivery("retry", retry_in=wait)


def _smtp_reason(exc: smtplib.SMTPResponseException) -> str:
    text = (
        exc.smtp_error.decode(errors="replace")
        if isinstance(exc.smtp_error, bytes)
        else str(exc.smtp_error)
    )
    return f"SMTP {exc.smtp_code}: {' '.join(text.split())}"


def _send_email(note: Notification) -> None:
    connection = get_connection(
        timeout=getattr(settings, "EMAIL_TIMEOUT", None) or SMTP_TIMEOUT_SECONDS
    )
    message = EmailMultiAlternatives(
        subject=note.subject,
        body=note.body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[note.recipient],
        connection=connection,
        # RFC 3834: tells auto-responders not to answer.
        headers={"Auto-Submitted": "auto-generated"},
    )
    if note.body_html:
        message.attach_alternative(note.body_html, "text/html")
    try:
        message.send()
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        raise DeliveryError(
            "SMTP server refused the recipient ("
            + ", ".join(
                f"{code} {msg.decode(errors='replace') if isinstance(msg, bytes) else msg}"
                for code, msg in exc.recipients.values()
            )
            + ")",
            permanent=bool(codes) and all(500 <= code < 600 for code in codes),
        ) from None
    except smtplib.SMTPResponseException as exc:
        # 5xx is the server's final word (bad address, authentication); 4xx means later.
        raise DeliveryError(_smtp_reason(exc), permanent=500 <= exc.smtp_code < 600) from None
    except smtplib.SMTPServerDisconnected as exc:
        raise DeliveryError(f"SMTP server disconnected: {exc}", permanent=False) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"SMTP error: {type(exc).__name__}: {exc}", permanent=False) from None


def _resource_of(note: Notification) -> Resource | None:
    if note.request is not None:
        return note.request.resource
    if note.grant is not None:
        return note.grant.resource
    return Resource.objects.filter(slug=note.recipient.removeprefix("slack:")).first()


def _send_slack(note: Notification) -> None:
    resource = _resource_of(note)
    url = resource.slack_webhook_url if resource is not None else ""
    if not url:
        raise DeliveryError("the resource has no Slack webhook any more", permanent=True)
    try:
        slack.post_message(url, note.payload or {"text": note.body})
    except slack.SlackError as exc:
        raise DeliveryError(
            slack.redact(str(exc), url), permanent=exc.permanent, retry_after=exc.retry_after
        ) from None


def _send_registered(note: Notification) -> None:
    sender = channels.sender_for(note.channel)
    if sender is None:
        raise DeliveryError(f"nothing delivers {note.channel} notices here", permanent=True)
    sender(note)
