"""The audit actions of access reviews (registered when the app loads)."""

from __future__ import annotations

from django.db import models


class ReviewAction(models.TextChoices):
    CAMPAIGN_OPENED = "review.campaign_opened", "Access review opened"
    ITEM_DECIDED = "review.item_decided", "Access review item decided"
    CAMPAIGN_CLOSED = "review.campaign_closed", "Access review closed"
    SCHEDULE_CHANGED = "review.schedule_changed", "Recurring access review configured"
