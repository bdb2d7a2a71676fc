"""Access reviews: a campaign, its items (one per fact to certify), their decisions.

Models are declarative; every change goes through ``apps.reviews.services``. Who sees
what has one home: ``ReviewItemQuerySet.restrict`` / ``CampaignQuerySet.restrict``.
Campaigns and items are never deleted (their decisions are evidence); the people and
resources they name are kept too (``on_delete=PROTECT``), and the names shown come from
the trail's copies (``apps.reviews.names``).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

from django.conf import settings
from django.db import connections, models
from django.db.models import Q

from apps.access.models import ListHasAny, Resource
from apps.access.visibility import sees_everything

if TYPE_CHECKING:
    from apps.accounts.models import User


class CampaignState(models.TextChoices):
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"


class ItemKind(models.TextChoices):
    """The facts a campaign certifies, per resource."""

    REQUESTER_GROUP = "requester_group", "May request"
    EVERYONE = "everyone", "Everyone signed in may request"
    APPROVER_GROUP = "approver_group", "Approves requests"
    BREAK_GLASS_GROUP = "break_glass_group", "May use break-glass"
    AUTO_APPROVE_RULE = "auto_approve_rule", "Approved automatically"
    BASE_RULE = "base_rule", "Standing base rule"
    LONG_GRANT = "long_grant", "Grant longer than the threshold"
    BREAK_GLASS_USE = "break_glass_use", "Break-glass use"


class Decision(models.TextChoices):
    KEEP = "keep", "Keep"
    REMOVE = "remove", "Remove"


class CampaignQuerySet(models.QuerySet["Campaign"]):
    def restrict(self, user: User) -> CampaignQuerySet:
        """Campaigns ``user`` may see: every one for auditors and superusers, otherwise
        those holding an item the user reviews."""
        if sees_everything(user):
            return self
        return self.filter(pk__in=ReviewItem.objects.restrict(user).values("campaign"))

    def open(self) -> CampaignQuerySet:
        return self.filter(state=CampaignState.OPEN)


class Campaign(models.Model):
    name = models.CharField(max_length=200)
    state = models.CharField(
        max_length=8, choices=CampaignState.choices, default=CampaignState.OPEN
    )
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    all_resources = models.BooleanField(
        default=True, help_text="Every active resource when it opened; else the chosen ones."
    )
    resources = models.ManyToManyField(Resource, blank=True, related_name="+")
    reviewer_group = models.CharField(
        max_length=150,
        blank=True,
        help_text="A group that reviews every item; empty: each resource's approvers.",
    )
    long_grant_minutes = models.PositiveIntegerField(
        help_text="Grants longer than this, in the period, are items of their own."
    )
    period_start = models.DateTimeField(
        help_text="The earliest 'since the last review' of its resources."
    )
    opened_at = models.DateTimeField()
    due_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    # Set when a recurring schedule opened it: "<schedule>:<period start date>" (one per period).
    schedule_key = models.CharField(max_length=120, blank=True, editable=False)
    reminded_at = models.DateTimeField(null=True, blank=True, editable=False)
    overdue_notified_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects: ClassVar[CampaignQuerySet] = CampaignQuerySet.as_manager()  # type: ignore[assignment]

    class Meta:
        ordering = ["-opened_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["schedule_key"],
                condition=~Q(schedule_key=""),
                name="one_campaign_per_schedule_period",
            )
        ]
        permissions = [("open_campaign", "Can open and close access reviews")]

    def __str__(self) -> str:
        return self.name

    def is_overdue(self, now: datetime) -> bool:
        return self.state == CampaignState.OPEN and self.due_at <= now


class ReviewItemQuerySet(models.QuerySet["ReviewItem"]):
    def restrict(self, user: User) -> ReviewItemQuerySet:
        """The one rule of who sees which item: auditors and superusers every item; a
        reviewer the items whose reviewer groups they are in."""
        if not user.is_active:
            return self.none()
        if sees_everything(user):
            return self
        groups = user.group_names()
        if not groups:
            return self.none()
        if connections[self.db].vendor in ListHasAny.VENDORS:
            return self.filter(ListHasAny("reviewer_groups", groups))
        ids = [
            pk
            for pk, names in self.values_list("pk", "reviewer_groups")
            if groups & set(names or [])
        ]
        return self.filter(pk__in=ids)

    def undecided(self) -> ReviewItemQuerySet:
        return self.filter(decision="")

    def overdue(self, now: datetime) -> ReviewItemQuerySet:
        return self.undecided().filter(
            campaign__state=CampaignState.OPEN, campaign__due_at__lte=now
        )


class ReviewItem(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="items")
    resource = models.ForeignKey(Resource, on_delete=models.PROTECT, related_name="+")
    # Copies at opening: the campaign's evidence reads the same after a rename.
    resource_slug = models.SlugField(max_length=64)
    resource_name = models.CharField(max_length=120)
    kind = models.CharField(max_length=24, choices=ItemKind.choices)
    subject = models.JSONField(
        help_text="The fact: a group name, a rule, or the grant it is about (with its email)."
    )
    summary = models.CharField(max_length=500)
    grant = models.ForeignKey(
        "access.Grant", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Who the fact is about (self-review: nobody reviews an item that concerns them).
    subject_groups = models.JSONField(default=list, blank=True)
    subject_emails = models.JSONField(default=list, blank=True)
    reviewer_groups = models.JSONField(
        default=list, blank=True, help_text="Empty: the superusers review it."
    )
    decision = models.CharField(max_length=8, choices=Decision.choices, blank=True)
    comment = models.TextField(blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(
        max_length=500, blank=True, help_text="What a removal changed (or why nothing)."
    )

    objects: ClassVar[ReviewItemQuerySet] = ReviewItemQuerySet.as_manager()  # type: ignore[assignment]

    class Meta:
        ordering = ["campaign", "resource_slug", "kind", "pk"]
        indexes = [models.Index(fields=["campaign", "decision"])]
        permissions = [("decide_reviewitem", "Can decide access review items")]

    def __str__(self) -> str:
        return f"{self.resource_name}: {self.summary}"


class ReviewSchedule(models.Model):
    """A recurring campaign defined in the bootstrap file (``reviews:``); the settings
    may define one more (``ACCESS_REVIEW_EVERY``). Written only by ``schedules``."""

    key = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    every = models.CharField(max_length=16)
    due_days = models.PositiveIntegerField()
    owner_email = models.EmailField()
    resources = models.JSONField(default=list, blank=True, help_text="Slugs; empty: all.")
    reviewer_group = models.CharField(max_length=150, blank=True)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.name
