"""The outbox: one row per message to one recipient on one channel.

A row is written by ``services.dispatch`` (or the reminder scan) with its content already
rendered, then delivered by the ``notifications.send`` task, which records the outcome on
the row. The row is also the record an admin reads to see what went out.

Secrets never reach a row: Slack rows name the resource (``slack:<slug>``), and the
webhook URL is read from the resource at send time.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import ClassVar

from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.access import events
from apps.reviews import events as review_events


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    # An incoming webhook (the resource's slack_webhook_url).
    SLACK = "slack", "Slack"
    # The portal's Slack app: a request's message in the resource's slack_channel, posted
    # and updated by the sender apps.slack registers (``channels``).
    SLACK_APP = "slackapp", "Slack app"


class Status(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class Event(models.TextChoices):
    """The domain events of ``apps.access.events`` (and the compliance events of
    ``compliance``) that produce notices."""

    REQUEST_SUBMITTED = events.REQUEST_SUBMITTED, "Request submitted"
    REQUEST_DECIDED = events.REQUEST_DECIDED, "Request decided"
    REQUEST_WAITING = events.REQUEST_WAITING, "Request waiting too long"
    GRANT_LIVE = events.GRANT_LIVE, "Access live in Pomerium"
    EXPIRY_REMINDER = events.EXPIRY_REMINDER, "Grant ends soon"
    GRANT_REVOKED = events.GRANT_REVOKED, "Grant revoked"
    BREAK_GLASS = events.BREAK_GLASS, "Break-glass activation"
    BREAK_GLASS_REFUSED = events.BREAK_GLASS_REFUSED, "Break-glass refused (not yet reviewed)"
    REMOVAL_OVERDUE = events.REMOVAL_OVERDUE, "Revocation not yet enforced"
    # Compliance (``compliance``): the audit stream's alert, access reviews.
    AUDIT_STREAM_ALERT = "audit_stream_alert", "Audit stream refused or unreachable"
    REVIEW_OPENED = review_events.REVIEW_OPENED, "Access review opened"
    REVIEW_REMINDER = review_events.REVIEW_REMINDER, "Access review due soon"
    REVIEW_OVERDUE = review_events.REVIEW_OVERDUE, "Access review overdue"
    # Only a request's Slack message follows these (apps.slack).
    APPROVAL_RECORDED = events.APPROVAL_RECORDED, "Approval recorded"
    REQUEST_CANCELLED = events.REQUEST_CANCELLED, "Request cancelled"
    REQUEST_EXPIRED = events.REQUEST_EXPIRED, "Request expired"
    GRANT_EXPIRED = events.GRANT_EXPIRED, "Grant expired"


class NotificationQuerySet(models.QuerySet["Notification"]):
    def pending(self) -> NotificationQuerySet:
        return self.filter(status=Status.PENDING)

    def unclaimed_at(self, now: datetime) -> NotificationQuerySet:
        """Rows no worker holds a lease on at ``now``."""
        return self.filter(Q(claimed_until__isnull=True) | Q(claimed_until__lte=now))

    def stuck(self, now: datetime, grace: timedelta) -> NotificationQuerySet:
        """Pending rows that should have been attempted ``grace`` ago and were not."""
        return self.pending().unclaimed_at(now).filter(next_attempt_at__lte=now - grace)


class Notification(models.Model):
    event = models.CharField(max_length=32, choices=Event.choices)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    recipient = models.CharField(
        max_length=320, help_text='An email address, or "slack:<resource slug>".'
    )
    subject = models.CharField(max_length=255)
    body = models.TextField(help_text="The plain-text part (email) or the fallback text (Slack).")
    body_html = models.TextField(blank=True)
    payload = models.JSONField(null=True, blank=True, help_text="The Slack message, as sent.")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # A lease, not a state: a worker that dies mid-send lets go when it runs out.
    claimed_until = models.DateTimeField(null=True, blank=True, editable=False)
    sent_at = models.DateTimeField(null=True, blank=True)
    request = models.ForeignKey(
        "access.AccessRequest",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="notifications",
    )
    grant = models.ForeignKey(
        "access.Grant",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="notifications",
    )
    # sha256 of (event, target, channel, recipient[, occasion]): a domain event delivered
    # twice to the dispatcher yields its rows once.
    dedup_key = models.CharField(max_length=64, unique=True, editable=False)

    objects: ClassVar[NotificationQuerySet] = NotificationQuerySet.as_manager()  # type: ignore[assignment]

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.get_event_display()} → {self.recipient} ({self.get_status_display()})"
