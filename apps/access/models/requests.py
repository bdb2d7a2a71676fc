"""Access requests and their approvals."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, ClassVar

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from apps.kit import choices

from ..states import (
    RequestKind,
    RequestState,
)
from .querysets import AccessRequestQuerySet, ApprovalQuerySet, pending_first
from .resources import AccessLevel, Resource

if TYPE_CHECKING:
    pass


class AccessRequest(models.Model):
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="access_requests"
    )
    filed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Who filed it: the requester, or an approver acting on their behalf.",
    )
    resource = models.ForeignKey(Resource, on_delete=models.PROTECT, related_name="requests")
    kind = models.CharField(max_length=16, choices=RequestKind.choices, default=RequestKind.NEW)
    extends_grant = models.ForeignKey(
        "Grant", null=True, blank=True, on_delete=models.PROTECT, related_name="extension_requests"
    )
    level = models.ForeignKey(
        AccessLevel,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The level asked for; empty on resources without levels.",
    )
    approved_level = models.ForeignKey(
        AccessLevel,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="A lower level an approver chose; empty: the level asked for.",
    )
    duration_minutes = models.PositiveIntegerField()
    start_at = models.DateTimeField(null=True, blank=True, help_text="Empty: start when approved.")
    justification = models.TextField(blank=True)
    ticket = models.CharField(max_length=120, blank=True)
    state = models.CharField(
        max_length=16, choices=RequestState.choices, default=RequestState.PENDING
    )
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(help_text="Undecided by then, the request expires.")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)
    approved_duration_minutes = models.PositiveIntegerField(null=True, blank=True)
    auto_approved_rule = models.JSONField(null=True, blank=True)
    auto_approval_note = models.TextField(
        blank=True,
        help_text="Why an on-call rule could not auto-approve it (the provider could not be "
        "asked), so it waits for an approver.",
    )
    reminded_at = models.DateTimeField(
        null=True, blank=True, help_text="When approvers were told it waits too long."
    )

    objects: ClassVar[AccessRequestQuerySet] = AccessRequestQuerySet.as_manager()  # type: ignore[assignment]

    class Meta:
        ordering = ["-created_at"]
        permissions = [("decide_accessrequest", "Can approve or reject access requests")]
        constraints = [
            models.UniqueConstraint(
                fields=["requester", "resource"],
                condition=Q(state="pending"),
                name="one_pending_request_per_user_and_resource",
            )
        ]
        indexes = [
            models.Index(fields=["state", "created_at"]),
            # A person's requests newest first (the dashboard, the API's pages): a page
            # reads its rows off the index, however long the person's history.
            models.Index(fields=["requester", "-created_at", "-id"], name="access_req_mine_newest"),
            # The admin's order (pending first, newest first): the changelist reads its page
            # from this index instead of sorting every visible request.
            models.Index(
                pending_first(), F("created_at").desc(), F("id").desc(), name="request_admin_order"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.requester} → {self.resource} ({choices.display(self, 'state')})"

    @property
    def resource_slug_for_audit(self) -> str:
        return self.resource.slug

    @property
    def duration(self) -> timedelta:
        return timedelta(minutes=self.duration_minutes)

    @property
    def effective_level(self) -> AccessLevel | None:
        """The level a grant gets: the approver's lower choice, else the one asked for."""
        return self.approved_level or self.level


class Approval(models.Model):
    """One approver's yes on a request (quorum counts distinct approvers), with the
    conditions that approver set. Under a quorum the grant takes the most restrictive
    conditions of the approvals that count (``services.strictest_conditions``)."""

    request = models.ForeignKey(AccessRequest, on_delete=models.CASCADE, related_name="approvals")
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()
    note = models.TextField(blank=True)
    duration_minutes = models.PositiveIntegerField(
        null=True, blank=True, help_text="The shorter duration this approver set; empty: as asked."
    )
    level = models.ForeignKey(
        AccessLevel,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The lower level this approver set; empty: as asked.",
    )
    stage = models.PositiveSmallIntegerField(
        default=1, help_text="The approval stage it was given in (1 without stages)."
    )

    objects: ClassVar[ApprovalQuerySet] = ApprovalQuerySet.as_manager()  # type: ignore[assignment]

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["request", "approver"], name="one_approval_per_approver"
            )
        ]

    def __str__(self) -> str:
        return f"{self.approver} approved #{self.request_id}"
