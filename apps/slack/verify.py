"""Is this request really from Slack, fresh, and new? (Slack's "Verifying requests from Slack".)

Slack signs every request it sends with the app's signing secret: ``X-Slack-Signature`` is
``v0=`` + HMAC-SHA256 of ``v0:{X-Slack-Request-Timestamp}:{raw body}``. slack-sdk's
``SignatureVerifier`` computes it and compares in constant time; it also refuses a
timestamp more than 5 minutes away from now. On top, a request seen once is refused the
second time (``SeenInteraction``): a captured click replayed within the 5 minutes does
nothing.

``Unverified.authentic`` says whether the body was signed by Slack even though it is
refused (stale, replayed): only then may the portal answer through the payload's
``response_url``, which is otherwise whatever the sender wrote.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from slack_sdk.signature import Clock, SignatureVerifier

from .models import SeenInteraction

WINDOW = timedelta(minutes=5)  # what SignatureVerifier allows either way


class Unverified(Exception):
    """The request is refused before its content is read. ``code``: ``not_configured``,
    ``bad_signature``, ``stale_timestamp`` or ``replay``."""

    def __init__(self, code: str, message: str, *, authentic: bool) -> None:
        super().__init__(message)
        self.code = code
        self.authentic = authentic


class _At(Clock):
    def __init__(self, now: datetime) -> None:
        self._now = now.timestamp()

    def now(self) -> float:
        return self._now


def verify(body: bytes, *, timestamp: str | None, signature: str | None, now: datetime) -> None:
    """Return when ``body`` is Slack's, signed within 5 minutes of ``now`` and not seen
    before (it is then remembered); raise ``Unverified`` otherwise."""
    secret = settings.SLACK_SIGNING_SECRET
    if not secret:
        raise Unverified("not_configured", "SLACK_SIGNING_SECRET is not set.", authentic=False)
    if not timestamp or not signature or not timestamp.isascii() or not timestamp.isdigit():
        raise Unverified("bad_signature", "No valid Slack signature.", authentic=False)
    verifier = SignatureVerifier(secret, clock=_At(now))
    try:
        expected = verifier.generate_signature(timestamp=timestamp, body=body) or ""
    except UnicodeDecodeError:
        raise Unverified("bad_signature", "No valid Slack signature.", authentic=False) from None
    if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
        raise Unverified("bad_signature", "No valid Slack signature.", authentic=False)
    # The signature is Slack's; now the SDK's whole check, the 5-minute window included.
    if not verifier.is_valid(body=body, timestamp=timestamp, signature=signature):
        raise Unverified(
            "stale_timestamp",
            "This click is more than 5 minutes old; click again.",
            authentic=True,
        )
    digest = hashlib.sha256(f"v0:{timestamp}:".encode() + body).hexdigest()
    try:
        with transaction.atomic():
            SeenInteraction.objects.create(digest=digest, received_at=now)
    except IntegrityError:
        raise Unverified(
            "replay", "This click was already received; it is not taken twice.", authentic=True
        ) from None
    SeenInteraction.prune(now, WINDOW)
