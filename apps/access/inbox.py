"""What waits for an approver: the counts on the admin's index page.

* pending for me: requests the person may decide (``queries.decidable_by``) that they have
  not approved yet;
* break-glass to review: unreviewed break-glass grants on resources they decide, not their
  own (nobody reviews their own);
* revocations not yet enforced: revoked grants Pomerium has not confirmed removed in time
  (``GrantQuerySet.removal_overdue``), on resources they may see.

Each is one COUNT query, whatever the history; each links to the admin list that shows the
same rows (the requests list's "waiting for me" filter, the grants list's filters).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from django.db.models import QuerySet

from . import queries
from .models import AccessRequest, Grant, Resource

if TYPE_CHECKING:
    from apps.accounts.models import User


def waiting_for(user: User, now: datetime) -> QuerySet[AccessRequest]:
    """Pending requests ``user`` may still decide and has not approved yet."""
    # approved_by_me is decidable_by's annotation, which the type stubs cannot see.
    return queries.decidable_by(user, now).filter(approved_by_me=False)  # type: ignore[misc]


def to_review(user: User) -> QuerySet[Grant]:
    """Unreviewed break-glass grants ``user`` may review."""
    return (
        Grant.objects.needing_review()
        .filter(resource__in=Resource.objects.decidable_by(user))
        .exclude(user=user)
    )


def not_enforced(user: User, now: datetime) -> QuerySet[Grant]:
    """Revocations Pomerium has not confirmed in time, on resources ``user`` may see."""
    return Grant.objects.visible_to(user).removal_overdue(now)


@dataclass(frozen=True)
class Counts:
    waiting: int
    to_review: int
    not_enforced: int


def counts(user: User, now: datetime) -> Counts:
    """The three counts for ``user``: three COUNT queries."""
    return Counts(
        waiting=waiting_for(user, now).order_by().count(),
        to_review=to_review(user).order_by().count(),
        not_enforced=not_enforced(user, now).order_by().count(),
    )
