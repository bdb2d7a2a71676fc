"""Notices of the compliance side: the audit stream's alert and access reviews.

=====================  =========================================================
event                  email to
=====================  =========================================================
audit_stream_alert     every superuser: a destination refused the stream, or has
                       been unreachable longer than AUDIT_STREAM_ALERT_AFTER_SECONDS
review_opened          each reviewer with items to decide in the new campaign
review_reminder        each reviewer still holding undecided items (before the due date)
review_overdue         the campaign's owner, and each reviewer still holding items
=====================  =========================================================

The audit app (``apps.audit.stream.signals.stream_alert``) and the reviews app
(``apps.reviews.events.review_event``) announce these after commit; ``receivers`` connects
to both. Planning and storing go through the outbox like every other notice
(``services.store``: one row per recipient, deduplicated, sent with retries).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.urls import reverse

from apps.accounts.roles import claim_group_name
from apps.reviews import events as review_events
from apps.reviews.models import Campaign, ReviewItem
from apps.reviews.services import concerns, may_review

from . import audience
from .messages import Message, absolute, email
from .models import Event

AUDIT_STREAM_ALERT = Event.AUDIT_STREAM_ALERT.value


def stream_alert(
    *, destination: str = "", error: str = "", refused: bool = False, at: str = "", **_: Any
) -> list[Message]:
    context = {
        "destination": destination,
        "error": error,
        "refused": refused,
        "admin_url": absolute(reverse("admin:audit_streamdestination_changelist")),
    }
    return [
        email(
            user,
            event=AUDIT_STREAM_ALERT,
            template="audit_stream_alert",
            context=context,
            occasion=f"{destination}|{at}",
        )
        for user in audience.superusers()
    ]


def _reviewers(campaign: Campaign) -> list[tuple[Any, int]]:
    """(user, undecided items they may decide), for everyone with at least one."""
    items = list(ReviewItem.objects.filter(campaign=campaign, decision="").select_related("grant"))
    groups = sorted({g for item in items for g in item.reviewer_groups})
    model = get_user_model()
    candidates = list(
        model.objects.filter(
            is_active=True, groups__name__in=[claim_group_name(g) for g in groups]
        ).distinct()
    )
    candidates += audience.superusers()
    found: dict[int, tuple[Any, int]] = {}
    for user in candidates:
        if user.pk in found or not user.email:
            continue
        count = sum(1 for i in items if may_review(user, i) and not concerns(user, i))
        if count:
            found[user.pk] = (user, count)
    return sorted(found.values(), key=lambda pair: pair[0].email.lower())


def _campaign_context(campaign: Campaign) -> dict[str, Any]:
    return {
        "campaign": campaign,
        "reviews_url": absolute(reverse("reviews:mine")),
        "admin_url": absolute(reverse("admin:reviews_campaign_change", args=[campaign.pk])),
    }


def review(event: str, *, campaign_id: int | None = None, **_: Any) -> list[Message]:
    if campaign_id is None:
        return []
    campaign = Campaign.objects.select_related("owner").filter(pk=campaign_id).first()
    if campaign is None or campaign.state != "open":
        return []
    context = _campaign_context(campaign)
    recipients = [(user, count, False) for user, count in _reviewers(campaign)]
    owner = campaign.owner
    if event == review_events.REVIEW_OVERDUE and owner.is_active and owner.email:
        # The owner hears of every undecided item, not only of those they review.
        recipients = [r for r in recipients if r[0].pk != owner.pk]
        recipients.append((owner, campaign.items.filter(decision="").count(), True))
    return [
        email(
            user,
            event=event,
            template=event,
            context={**context, "count": count, "as_owner": as_owner},
            occasion=f"campaign:{campaign.pk}",
        )
        for user, count, as_owner in recipients
    ]


def plan(event: str, **facts: Any) -> list[Message]:
    """The notices of one compliance event (unknown events plan nothing)."""
    if event == AUDIT_STREAM_ALERT:
        return stream_alert(**facts)
    if event in (
        review_events.REVIEW_OPENED,
        review_events.REVIEW_REMINDER,
        review_events.REVIEW_OVERDUE,
    ):
        return review(event, **facts)
    return []
