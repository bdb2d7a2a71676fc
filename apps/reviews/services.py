"""Every change of an access review: open, decide, close, remind.

Each public function is one transaction (``audit.atomic()``) with its audit entry; what
people are told is announced after commit (``events``). Errors are the access domain's
(``NotAllowed``, ``PolicyViolation``, ``IllegalTransition``) with a sentence a person can
read; nothing is changed when one is raised.

Rules:

* Only auditors and superusers open and close campaigns (``may_run``).
* An item is decided by one of its reviewers (a member of its reviewer groups; superusers
  always may), never by someone it concerns: a member of a group it names, the person it
  names (one person, one identity: the normalised email), the holder of its grant.
* A decision is final. "remove" needs a comment and changes the resource through the
  access app's services (``removal``); the change and the decision commit together.
* Items open at the due date stay open (and are listed as overdue); nothing is removed by
  default. Closing leaves them undecided, counted in the closing entry.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db.models import Max
from django.utils import timezone

from apps.access.models import Resource
from apps.access.states import IllegalTransition, NotAllowed, PolicyViolation
from apps.accounts import roles
from apps.accounts.emails import normalize_email
from apps.audit import services as audit
from apps.audit.services import record

from . import events, facts, removal
from .actions import ReviewAction
from .models import Campaign, CampaignState, Decision, ReviewItem

if TYPE_CHECKING:
    from apps.accounts.models import User

MAX_TEXT = 4000


def may_run(user: Any) -> bool:
    """Auditors and superusers open, close and export campaigns."""
    return bool(
        getattr(user, "is_active", False)
        and (user.is_superuser or roles.holds(user, roles.AUDITOR))
    )


def may_review(user: User, item: ReviewItem) -> bool:
    if not user.is_active:
        return False
    return user.is_superuser or bool(user.group_names() & set(item.reviewer_groups))


def concerns(user: User, item: ReviewItem) -> bool:
    """Whether ``item`` is about ``user``: their group, their email, their grant."""
    if user.group_names() & set(item.subject_groups):
        return True
    key = normalize_email(user.email or "")
    if key and key in {normalize_email(e) for e in item.subject_emails}:
        return True
    return bool(item.grant_id) and item.grant is not None and item.grant.user_id == user.pk


def _text(value: str, name: str, limit: int = MAX_TEXT) -> str:
    value = (value or "").strip()
    if len(value) > limit:
        raise PolicyViolation(f"The {name} is too long (at most {limit} characters).")
    return value


def _since(resources: list[Resource], now: datetime) -> dict[int, datetime]:
    """Each resource's last review (the opening of its latest campaign), or the first
    period's start for one never reviewed."""
    first = now - timedelta(days=settings.ACCESS_REVIEW_FIRST_PERIOD_DAYS)
    last = dict(
        ReviewItem.objects.filter(resource__in=resources)
        .values("resource")
        .annotate(at=Max("campaign__opened_at"))
        .values_list("resource", "at")
    )
    return {r.pk: min(last.get(r.pk) or first, now) for r in resources}


def open_campaign(
    *,
    owner: User,
    name: str,
    due_at: datetime,
    resources: Iterable[Resource] | None = None,
    reviewer_group: str = "",
    long_grant_minutes: int | None = None,
    actor: User | None = None,
    schedule_key: str = "",
    now: datetime | None = None,
) -> Campaign:
    """Open a campaign over ``resources`` (None: every active resource) due at ``due_at``,
    with one item per fact of each resource (``facts``). ``actor`` is who opened it (the
    owner; None for a schedule). Audits ``review.campaign_opened``; reviewers are told."""
    now = now or timezone.now()
    if not may_run(owner):
        raise NotAllowed("Only auditors and superusers run access reviews.")
    if actor is not None and not may_run(actor):
        raise NotAllowed("Only auditors and superusers open access reviews.")
    name = _text(name, "name", 200)
    if not name:
        raise PolicyViolation("Give the review a name.")
    if due_at <= now:
        raise PolicyViolation("The due date must be in the future.")
    reviewer_group = _text(reviewer_group, "reviewer group", 150)
    long_minutes = long_grant_minutes or settings.ACCESS_REVIEW_LONG_GRANT_HOURS * 60
    everything = resources is None
    targets = list(
        Resource.objects.active().order_by("slug")
        if resources is None
        else sorted(set(resources), key=lambda r: r.slug)
    )
    if not targets:
        raise PolicyViolation("There is no resource to review.")
    with audit.atomic():
        since = _since(targets, now)
        campaign = Campaign.objects.create(
            name=name,
            owner=owner,
            all_resources=everything,
            reviewer_group=reviewer_group,
            long_grant_minutes=long_minutes,
            period_start=min(since.values()),
            opened_at=now,
            due_at=due_at,
            schedule_key=schedule_key,
        )
        if not everything:
            campaign.resources.set(targets)
        items = []
        for resource in targets:
            found = facts.configuration(resource) + facts.grants(
                resource, since=since[resource.pk], now=now, long_minutes=long_minutes
            )
            for fact in found:
                items.append(
                    ReviewItem(
                        campaign=campaign,
                        resource=resource,
                        resource_slug=resource.slug,
                        resource_name=resource.name,
                        kind=fact.kind,
                        subject=fact.subject,
                        summary=fact.summary,
                        grant=fact.grant,
                        subject_groups=fact.groups,
                        subject_emails=fact.emails,
                        reviewer_groups=facts.reviewer_groups(resource, fact.kind, reviewer_group),
                    )
                )
        ReviewItem.objects.bulk_create(items)
        record(
            ReviewAction.CAMPAIGN_OPENED,
            actor=actor,
            target=campaign,
            details={
                "name": name,
                "owner": owner.email,
                "due_at": due_at.isoformat(),
                "resources": "all" if everything else [r.slug for r in targets],
                "reviewer_group": reviewer_group or None,
                "items": len(items),
                "period_start": campaign.period_start.isoformat(),
                "long_grant_minutes": long_minutes,
                "schedule": schedule_key or None,
            },
        )
        events.emit(events.REVIEW_OPENED, campaign_id=campaign.pk)
    return campaign


def decide_item(
    item: ReviewItem,
    *,
    reviewer: User,
    decision: str,
    comment: str = "",
    now: datetime | None = None,
) -> ReviewItem:
    """Keep or remove one item (see the module docstring). Audits ``review.item_decided``
    with what a removal changed; the removal's own entries (``resource.changed``,
    ``grant.revoked``) are written by the access services in the same transaction."""
    now = now or timezone.now()
    comment = _text(comment, "comment")
    if decision not in Decision.values:
        raise PolicyViolation("Decide keep or remove.")
    if decision == Decision.REMOVE and not comment:
        raise PolicyViolation("Say why it should be removed.")
    with audit.atomic():
        item = (
            ReviewItem.objects.select_for_update(of=("self",))
            .select_related("campaign", "grant")
            .get(pk=item.pk)
        )
        if item.campaign.state != CampaignState.OPEN:
            raise IllegalTransition("This review is closed.")
        if item.decision:
            raise IllegalTransition(f"This item was already decided ({item.decision}).")
        if not may_review(reviewer, item):
            raise NotAllowed("You are not a reviewer of this item.")
        if concerns(reviewer, item):
            raise NotAllowed("This item concerns you: someone else must review it.")
        outcome = ""
        if decision == Decision.REMOVE:
            outcome = removal.remove(item, reviewer=reviewer, comment=comment)
        item.decision = decision
        item.comment = comment
        item.decided_by = reviewer
        item.decided_at = now
        item.outcome = outcome
        item.save(update_fields=["decision", "comment", "decided_by", "decided_at", "outcome"])
        record(
            ReviewAction.ITEM_DECIDED,
            actor=reviewer,
            target=item,
            resource_slug=item.resource_slug,
            details={
                "campaign": item.campaign_id,
                "kind": item.kind,
                "subject": item.subject,
                "summary": item.summary,
                "decision": decision,
                "comment": comment,
                "outcome": outcome,
                "overdue": item.campaign.due_at <= now,
            },
        )
    return item


def close_campaign(campaign: Campaign, *, actor: User, now: datetime | None = None) -> Campaign:
    """Close an open campaign; undecided items stay undecided and are counted."""
    now = now or timezone.now()
    if not may_run(actor):
        raise NotAllowed("Only auditors and superusers close access reviews.")
    with audit.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if campaign.state != CampaignState.OPEN:
            raise IllegalTransition("This review is already closed.")
        decisions = list(campaign.items.values_list("decision", flat=True))
        campaign.state = CampaignState.CLOSED
        campaign.closed_at = now
        campaign.closed_by = actor
        campaign.save(update_fields=["state", "closed_at", "closed_by"])
        undecided = decisions.count("")
        record(
            ReviewAction.CAMPAIGN_CLOSED,
            actor=actor,
            target=campaign,
            details={
                "name": campaign.name,
                "items": len(decisions),
                "kept": decisions.count(Decision.KEEP),
                "removed": decisions.count(Decision.REMOVE),
                "undecided": undecided,
                "overdue": undecided if campaign.due_at <= now else 0,
                "due_at": campaign.due_at.isoformat(),
            },
        )
    return campaign


def send_reminders(now: datetime | None = None) -> dict[str, int]:
    """Claim and announce the reminders due at ``now``, each once: reviewers before the due
    date (``ACCESS_REVIEW_REMIND_DAYS``), the owner and the reviewers still holding items
    once it passed. Each claim is a conditional UPDATE, so two ticks announce once."""
    now = now or timezone.now()
    counts = {"review_reminders": 0, "review_overdue": 0}
    waiting = Campaign.objects.open().filter(items__decision="").distinct()
    lead = timedelta(days=settings.ACCESS_REVIEW_REMIND_DAYS)
    if lead:
        due_soon = waiting.filter(
            reminded_at__isnull=True, due_at__gt=now, due_at__lte=now + lead
        ).values_list("pk", flat=True)
        for pk in list(due_soon):
            with audit.atomic():
                if Campaign.objects.filter(pk=pk, reminded_at__isnull=True).update(reminded_at=now):
                    events.emit(events.REVIEW_REMINDER, campaign_id=pk)
                    counts["review_reminders"] += 1
    overdue = waiting.filter(overdue_notified_at__isnull=True, due_at__lte=now)
    for pk in list(overdue.values_list("pk", flat=True)):
        with audit.atomic():
            claimed = Campaign.objects.filter(pk=pk, overdue_notified_at__isnull=True).update(
                overdue_notified_at=now
            )
            if claimed:
                events.emit(events.REVIEW_OVERDUE, campaign_id=pk)
                counts["review_overdue"] += 1
    return counts
