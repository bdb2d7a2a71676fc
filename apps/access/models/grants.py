"""Grants and their extensions."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.kit import choices

from .. import schedules, targets
from ..states import (
    OPEN_GRANT_STATES,
    GrantState,
    SyncStatus,
    is_live,
)
from .querysets import GrantExtensionQuerySet, GrantQuerySet
from .requests import AccessRequest
from .resources import AccessLevel, Resource

if TYPE_CHECKING:
    pass


class Grant(models.Model):
    request = models.OneToOneField(AccessRequest, on_delete=models.PROTECT, related_name="grant")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="grants"
    )
    email = models.EmailField(help_text="The user's email when approved; what the PPL rule names.")
    resource = models.ForeignKey(Resource, on_delete=models.PROTECT, related_name="grants")
    level = models.ForeignKey(
        AccessLevel,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="grants",
        help_text="The level approved; empty on resources without levels.",
    )
    criteria = models.JSONField(
        default=list,
        blank=True,
        help_text="The extra PPL criteria this grant's rule carries, copied when it was "
        "approved (level, then schedule): editing the level later does not change it.",
    )
    schedule = models.JSONField(
        null=True, blank=True, help_text="The recurring window copied when it was approved."
    )
    not_before = models.DateTimeField()
    expires_at = models.DateTimeField()
    state = models.CharField(max_length=16, choices=GrantState.choices)
    created_at = models.DateTimeField()
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoke_reason = models.TextField(blank=True)
    is_break_glass = models.BooleanField(default=False)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.TextField(blank=True)
    # Filled by the Zero sync.
    sync_status = models.CharField(
        max_length=16, choices=SyncStatus.choices, default=SyncStatus.PENDING
    )
    sync_error = models.TextField(blank=True)
    live_at = models.DateTimeField(null=True, blank=True, help_text="Zero confirmed the rule.")
    enforced_at = models.DateTimeField(
        null=True, blank=True, help_text="When Zero applied the latest change for this grant."
    )
    removed_at = models.DateTimeField(
        null=True, blank=True, help_text="When Zero confirmed the rule was gone."
    )
    reminder_sent_at = models.DateTimeField(null=True, blank=True)

    objects: ClassVar[GrantQuerySet] = GrantQuerySet.as_manager()  # type: ignore[assignment]

    class Meta:
        ordering = ["-not_before"]
        permissions = [
            ("revoke_grant", "Can revoke grants"),
            ("extend_grant", "Can extend grants"),
            ("review_grant", "Can mark break-glass grants reviewed"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "resource"],
                condition=Q(state__in=["scheduled", "active"]),
                name="one_open_grant_per_user_and_resource",
            ),
            models.CheckConstraint(
                condition=Q(expires_at__gt=models.F("not_before")), name="grant_window_not_empty"
            ),
        ]
        indexes = [
            models.Index(fields=["state", "expires_at"]),
            models.Index(fields=["resource", "state"]),
            # A person's grants latest start first (the API's pages) and their open grants
            # soonest first (the dashboard's pages), without reading their ended ones.
            models.Index(fields=["user", "-not_before", "-id"], name="access_grant_mine_latest"),
            models.Index(
                fields=["user", "not_before", "id"],
                condition=models.Q(state__in=OPEN_GRANT_STATES),
                name="access_grant_mine_open",
            ),
            # The admin's order (newest window first, then id): read from the index.
            models.Index(fields=["-not_before", "-id"], name="grant_admin_order"),
        ]

    def __str__(self) -> str:
        return f"{self.email} → {self.resource} ({choices.display(self, 'state')})"

    @property
    def resource_slug_for_audit(self) -> str:
        return self.resource.slug

    @property
    def is_live(self) -> bool:
        """Pomerium has confirmed the grant's rule (``states.is_live``, the one definition)."""
        return is_live(self.sync_status)

    def is_open_at(self, now: datetime) -> bool:
        """Scheduled or active and not yet over: it can still be extended or revoked."""
        return self.state in OPEN_GRANT_STATES and self.expires_at > now

    def removal_is_overdue(self, now: datetime) -> bool:
        """The instance form of ``GrantQuerySet.removal_overdue``."""
        threshold = now - timedelta(seconds=settings.ZERO_REMOVAL_ALERT_SECONDS)
        if (
            self.expires_at <= threshold
            and self.sync_status != SyncStatus.REMOVED
            and not targets.closes_by_itself(self.resource.cluster)
        ):
            return True
        return (
            self.state == GrantState.REVOKED
            and self.revoked_at is not None
            and self.revoked_at <= threshold
            and self.expires_at > now
            and self.sync_status != SyncStatus.REMOVED
        )

    def window(self) -> dict[str, Any]:
        """The window for audit details, with the level and schedule when there are any."""
        window: dict[str, Any] = {
            "not_before": self.not_before.isoformat(),
            "expires_at": self.expires_at.isoformat(),
        }
        if self.level_id is not None:
            window["level"] = self.level.slug if self.level else None
        if self.schedule:
            window["schedule"] = self.schedule
        return window

    def parsed_schedule(self) -> schedules.Schedule | None:
        return schedules.parse(self.schedule)

    def access_ends_at(self) -> datetime:
        """When access really ends: the last window's close with a schedule, else the end."""
        schedule = self.parsed_schedule()
        if schedule is None:
            return self.expires_at
        return schedules.last_window_end(schedule, self.not_before, self.expires_at) or (
            self.not_before
        )


class GrantExtension(models.Model):
    grant = models.ForeignKey(Grant, on_delete=models.CASCADE, related_name="extensions")
    extended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()
    old_expires_at = models.DateTimeField()
    new_expires_at = models.DateTimeField()
    reason = models.TextField()
    over_maximum = models.BooleanField(default=False)

    objects: ClassVar[GrantExtensionQuerySet] = GrantExtensionQuerySet.as_manager()  # type: ignore[assignment]

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.grant} extended to {self.new_expires_at:%Y-%m-%d %H:%M %Z}"
