"""What the Slack app keeps: each request's message, and the interactions already seen."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import models


class SlackMessage(models.Model):
    """The one Slack message of a request: where it is, and what it shows now.

    Created (ts empty) under a row lock before the first ``chat.postMessage``, filled with
    Slack's ``ts`` once posted; every later delivery updates it with ``chat.update``.
    ``fingerprint`` is the hash of the content last sent, so an unchanged message is not
    sent again.
    """

    request = models.OneToOneField(
        "access.AccessRequest", on_delete=models.CASCADE, related_name="slack_message"
    )
    channel = models.CharField(max_length=32, help_text="The Slack channel id it was posted in.")
    ts = models.CharField(max_length=32, blank=True, help_text="Slack's id of the message.")
    fingerprint = models.CharField(max_length=64, blank=True, editable=False)
    posted_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["channel", "ts"])]

    def __str__(self) -> str:
        return f"Slack message of request #{self.request_id} ({self.channel} {self.ts or '-'})"


class SeenInteraction(models.Model):
    """One signed request from Slack already taken: the same one again is a replay.

    ``digest`` is sha256 of the signed base string (timestamp and body). Rows older than
    the 5-minute window are worthless (a request that old is refused for its timestamp) and
    are removed as new ones arrive.
    """

    digest = models.CharField(max_length=64, unique=True)
    received_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.digest[:12]}… at {self.received_at:%H:%M:%S}"

    @classmethod
    def prune(cls, now: datetime, window: timedelta) -> int:
        deleted, _ = cls.objects.filter(received_at__lt=now - 2 * window).delete()
        return deleted
