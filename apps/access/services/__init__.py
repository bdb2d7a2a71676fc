"""Every state change of requests and grants.

Each public function is one transaction: it locks the rows it changes (request → grant →
resource, always in that order, before the first audit write), checks the rules, writes
the new state and its audit entries, and schedules side effects (the Zero sync,
notifications) with ``transaction.on_commit`` so a worker never sees a rolled-back row.
A double click, two approvers at once, or a task delivered twice does no harm: the second
caller finds the row already moved on and gets ``IllegalTransition``.

All functions take the actor as a keyword and raise ``AccessError`` subclasses with a
sentence a person can read.

The package is split by noun: ``rules`` (the checks and locks), ``requests`` (asking),
``decisions`` (approving, rejecting), ``grants`` (changing a grant) and ``clock`` (time
passing). Import from ``apps.access.services``: every public name of those is re-exported
here. Beside them, imported by their own path: ``enforcement`` (a grant's sync fields, from
the sync), ``reminders`` (what is due a reminder) and ``resources`` (saving resources and
their levels, the bootstrap definitions).
"""

from ..states import AccessError, PolicyViolation
from .clock import expire_due, expire_requests_of_archived
from .decisions import approve_request, reject_request
from .grants import (
    ENDED_EARLY_REASON,
    break_glass,
    end_access_of,
    end_own_grant,
    extend_grant,
    mark_reviewed,
    move_grants_to_email,
    revoke_grant,
)
from .requests import cancel_request, submit_on_behalf, submit_request
from .rules import MAX_TEXT, check_decider, grant_criteria, max_end, require_active

__all__ = [
    "ENDED_EARLY_REASON",
    "MAX_TEXT",
    "AccessError",
    "PolicyViolation",
    "approve_request",
    "break_glass",
    "cancel_request",
    "check_decider",
    "end_access_of",
    "end_own_grant",
    "expire_due",
    "expire_requests_of_archived",
    "extend_grant",
    "grant_criteria",
    "mark_reviewed",
    "max_end",
    "move_grants_to_email",
    "reject_request",
    "require_active",
    "revoke_grant",
    "submit_on_behalf",
    "submit_request",
]
