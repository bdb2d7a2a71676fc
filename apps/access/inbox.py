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

from . import queries, visibility
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
        .filter(resource__in=Resource.objects.restrict(user, visibility.CHANGE))
        .exclude(user=user)
    )


def not_enforced(user: User, now: datetime) -> QuerySet[Grant]:
    """Revocations Pomerium has not confirmed in time, on resources ``user`` may see."""
    return Grant.objects.restrict(user, visibility.VIEW).removal_overdue(now)


@dataclass(frozen=True)
class Count:
    key: str  # "waiting", "review", "not-enforced"
    label: str
    count: int


def counts_for(user: User, now: datetime) -> list[Count]:
    """The counts ``user``'s role acts on or reads, one COUNT query each: an approver gets
    all three, an auditor the unenforced revocations."""
    wanted = (
        ("access.decide_accessrequest", "waiting", "pending for me", waiting_for(user, now)),
        ("access.review_grant", "review", "break-glass to review", to_review(user)),
        (
            "access.view_grant",
            "not-enforced",
            "revocations not yet enforced",
            not_enforced(user, now),
        ),
    )
    return [
        Count(key, label, rows.order_by().count())
        for permission, key, label, rows in wanted
        if user.has_perm(permission)
    ]
