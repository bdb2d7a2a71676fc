"""States of requests and grants, and the transitions between them.

An illegal transition raises ``IllegalTransition``; nothing ever silently does nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from django.db import models


class AccessError(Exception):
    """A rule of the domain said no. ``str(exc)`` is a sentence for the person who asked."""


class IllegalTransition(AccessError):
    pass


class NotAllowed(AccessError):
    """The actor may not do this (own request, not an approver of the resource, ...)."""


class PolicyViolation(AccessError):
    """The request breaks the resource's rules (duration, justification, ticket, ...)."""


class OutsideWindow(PolicyViolation):
    """A request to start now on a resource whose recurring window is closed now.
    ``opens_at`` is when its next window opens: the person may ask to start then."""

    def __init__(self, message: str, *, opens_at: datetime) -> None:
        super().__init__(message)
        self.opens_at = opens_at


class Conflict(AccessError):
    """Something already exists that this would duplicate (an open request, an open grant)."""


class RequestState(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    CANCELLED = "cancelled", "Cancelled"
    EXPIRED = "expired", "Expired undecided"


class GrantState(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    ACTIVE = "active", "Active"
    EXPIRED = "expired", "Expired"
    REVOKED = "revoked", "Revoked"


class SyncStatus(models.TextChoices):
    PENDING = "pending", "Waiting for sync"
    PENDING_APPLY = "pending_apply", "Written, waiting for changeset apply"
    # "Live" means this, and only this: ``is_live`` below is its one definition.
    LIVE = "live", "Rule confirmed by Pomerium"
    REMOVED = "removed", "Removed from Pomerium"
    ERROR = "error", "Sync error"


class RequestKind(models.TextChoices):
    NEW = "new", "New access"
    EXTENSION = "extension", "Extension of a live grant"
    BREAK_GLASS = "break_glass", "Break-glass (emergency)"


REQUEST_TRANSITIONS: dict[str, frozenset[str]] = {
    RequestState.PENDING: frozenset(
        {RequestState.APPROVED, RequestState.REJECTED, RequestState.CANCELLED, RequestState.EXPIRED}
    ),
    RequestState.APPROVED: frozenset(),
    RequestState.REJECTED: frozenset(),
    RequestState.CANCELLED: frozenset(),
    RequestState.EXPIRED: frozenset(),
}

GRANT_TRANSITIONS: dict[str, frozenset[str]] = {
    GrantState.SCHEDULED: frozenset({GrantState.ACTIVE, GrantState.REVOKED, GrantState.EXPIRED}),
    GrantState.ACTIVE: frozenset({GrantState.EXPIRED, GrantState.REVOKED}),
    GrantState.EXPIRED: frozenset(),
    GrantState.REVOKED: frozenset(),
}

# A grant is open while it can still end by expiring: scheduled or active.
OPEN_GRANT_STATES = (GrantState.SCHEDULED, GrantState.ACTIVE)


_TABLES: dict[type[models.TextChoices], tuple[str, dict[str, frozenset[str]]]] = {
    RequestState: ("request", REQUEST_TRANSITIONS),
    GrantState: ("grant", GRANT_TRANSITIONS),
}


def check_transition(states: type[models.TextChoices], current: str, new: str) -> None:
    """Raise ``IllegalTransition`` unless the table lets ``current`` become ``new``."""
    noun, table = _TABLES[states]
    if new not in table[current]:
        raise IllegalTransition(
            f"This {noun} is {states(current).label.lower()}; it cannot become "
            f"{states(new).label.lower()}."
        )


class _Stateful(Protocol):
    state: str


def transition(obj: _Stateful, states: type[models.TextChoices], new: str) -> None:
    """The one way a request or grant changes state: checked against the table, then set.

    The caller holds the row's lock and saves it, with its audit entry, in its transaction.
    """
    check_transition(states, obj.state, new)
    obj.state = new


def is_live(sync_status: str) -> bool:
    """ "Live", in one meaning everywhere: Pomerium has confirmed the grant's current rule
    (``sync_status`` ``live``; ``live_at`` is when it first did, ``events.GRANT_LIVE``
    announces that first time). It is not "the person may get in now": a scheduled grant,
    or one between its recurring windows, is live and still closed; that answer is
    ``apps.access.reach.access``. A grant that may still be changed is *open*
    (``OPEN_GRANT_STATES``), never "live". ``Grant.is_live`` and ``GrantRow.is_live`` ask
    this."""
    return sync_status == SyncStatus.LIVE
