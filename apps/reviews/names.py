"""Who an item is about and who decided it, as the trail recorded them (``apps.audit.names``):
a person renamed or deleted since still reads as they were called then."""

from __future__ import annotations

from collections.abc import Iterable

from apps.access.actions import AccessAction
from apps.audit.names import actor_labels, detail_values

from .actions import ReviewAction

GRANT = "access.grant"
ITEM = "reviews.reviewitem"
_GRANT_CREATED = (
    AccessAction.GRANT_ACTIVATED,
    AccessAction.GRANT_SCHEDULED,
    AccessAction.GRANT_BREAK_GLASS,
)


def grant_emails(grant_ids: Iterable[int]) -> dict[int, str]:
    """grant id -> the holder's email as the entry that created the grant recorded it."""
    found = detail_values(GRANT, grant_ids, _GRANT_CREATED, "email")
    return {int(pk): str(email) for pk, email in found.items()}


def deciders(item_ids: Iterable[int]) -> dict[int, str]:
    """item id -> who decided it, as the decision's entry names them."""
    found = actor_labels(ITEM, item_ids, [ReviewAction.ITEM_DECIDED])
    return {int(pk): labels[-1] for pk, labels in found.items()}
