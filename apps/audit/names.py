"""Names as the trail recorded them: the copies that outlive renames and deletions.

An entry keeps the actor's email at the time (``actor_label``) and whatever its details
named (an email, a group), so reports and reviews read who did what from here rather than
from the user rows, which may have been renamed or, for people long gone, deleted. Each
function is one query over the ``(target_type, target_id)`` index, for many targets at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Q

from .models import AuditEvent

__all__ = ["actor_labels", "detail_values", "mentions"]


def _entries(target_type: str, target_ids: Iterable[Any], actions: Iterable[str]) -> Any:
    ids = sorted({str(pk) for pk in target_ids})
    if not ids:
        return AuditEvent.objects.none()
    return AuditEvent.objects.filter(
        target_type=target_type, target_id__in=ids, action__in=[str(a) for a in actions]
    ).order_by("seq")


def actor_labels(
    target_type: str, target_ids: Iterable[Any], actions: Iterable[str]
) -> dict[str, list[str]]:
    """target id -> the actor labels of its entries with ``actions``, oldest first, each
    once (e.g. every approver of a request, as they were called when they approved)."""
    found: dict[str, list[str]] = {}
    rows = _entries(target_type, target_ids, actions).values_list("target_id", "actor_label")
    for target_id, label in rows:
        labels = found.setdefault(target_id, [])
        if label not in labels:
            labels.append(label)
    return found


def detail_values(
    target_type: str, target_ids: Iterable[Any], actions: Iterable[str], key: str
) -> dict[str, Any]:
    """target id -> ``details[key]`` of its first entry with ``actions`` that has the key."""
    found: dict[str, Any] = {}
    rows = _entries(target_type, target_ids, actions).values_list("target_id", "details")
    for target_id, details in rows:
        if target_id not in found and isinstance(details, dict) and key in details:
            found[target_id] = details[key]
    return found


def mentions(
    target_type: str,
    target_id: Any,
    *,
    actor_id: Any = None,
    actor_label: str = "",
    resource_slug: str = "",
) -> bool:
    """Whether any entry names this object: as its target, as its actor (by id or by the
    copied label), or as its resource. The rows the trail names are never deleted
    (``on_delete`` guards in the apps that own them): archive them instead."""
    named = Q(target_type=target_type, target_id=str(target_id))
    if actor_id is not None:
        named |= Q(actor_id=actor_id)
    if actor_label:
        named |= Q(actor_label=actor_label)
    if resource_slug:
        named |= Q(resource_slug=resource_slug)
    return AuditEvent.objects.filter(named).exists()
