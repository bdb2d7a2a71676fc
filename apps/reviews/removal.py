"""What "remove" does to the resource: through the access app's own services, as the admin.

* a group (may request, approves, break-glass) or an auto-approval rule or a standing base
  rule leaves the resource's configuration through ``resources.save_resource``, which
  audits ``resource.changed`` (old and new values) and re-syncs the Zero policy when the
  policy's text changes (the base rules);
* "everyone signed in may request" removed archives the resource (no new requests);
* a long grant or a break-glass use still open is revoked through ``services.revoke_grant``
  (audited, and the rule leaves Zero at the next sync); one that already ended changes
  nothing, and says so.

A fact that is already gone (someone changed the resource since the campaign opened)
changes nothing, and says so. Removing the last requester group is refused: an empty list
means everyone signed in may request, the opposite of what the reviewer asked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.access import services as access_services
from apps.access.models import Grant, Resource
from apps.access.services.resources import save_resource
from apps.access.states import PolicyViolation
from apps.ppl import dumps

from .models import ItemKind, ReviewItem

if TYPE_CHECKING:
    from apps.accounts.models import User

_LIST_FIELDS = {
    ItemKind.REQUESTER_GROUP: "requester_groups",
    ItemKind.APPROVER_GROUP: "approver_groups",
    ItemKind.BREAK_GLASS_GROUP: "break_glass_groups",
    ItemKind.AUTO_APPROVE_RULE: "auto_approve_rules",
    ItemKind.BASE_RULE: "base_ppl",
}


def _same(a: Any, b: Any) -> bool:
    return dumps(a) == dumps(b)


def remove(item: ReviewItem, *, reviewer: User, comment: str) -> str:
    """Apply a "remove" decision; returns what it changed. Raises ``AccessError`` (a
    sentence for the reviewer) when the access app refuses the change."""
    if item.kind in (ItemKind.LONG_GRANT, ItemKind.BREAK_GLASS_USE):
        return _revoke(item, reviewer=reviewer, comment=comment)
    resource = Resource.objects.select_for_update().get(pk=item.resource_id)
    if item.kind == ItemKind.EVERYONE:
        if resource.requester_groups:
            return "already changed: the resource names requester groups now"
        if not resource.is_active:
            return "already archived"
        resource.is_active = False
        _save(resource, ["is_active"], reviewer)
        return "archived the resource: nobody may request it"
    field = _LIST_FIELDS[ItemKind(item.kind)]
    values = list(getattr(resource, field))
    kept = [v for v in values if not _same(v, item.subject)]
    if len(kept) == len(values):
        return f"already gone from {field}"
    if item.kind == ItemKind.REQUESTER_GROUP and not kept:
        raise PolicyViolation(
            f"{item.subject} is the last group that may request {resource.name}: removing it "
            "would let everyone signed in request it. Archive the resource instead, or keep."
        )
    setattr(resource, field, kept)
    _save(resource, [field], reviewer)
    return f"removed from {field}"


def _save(resource: Resource, changed: list[str], reviewer: User) -> None:
    try:
        resource.full_clean(validate_unique=False)
    except ValidationError as exc:
        raise PolicyViolation("; ".join(exc.messages)) from None
    save_resource(resource, actor=reviewer, changed=changed, created=False)


def _revoke(item: ReviewItem, *, reviewer: User, comment: str) -> str:
    assert item.grant_id is not None  # grant items always name their grant
    grant = Grant.objects.select_related("resource").get(pk=item.grant_id)
    if not grant.is_open_at(timezone.now()):
        state = grant.get_state_display().lower()
        return f"the grant had already ended ({state}); nothing to revoke"
    access_services.revoke_grant(
        grant, actor=reviewer, reason=f"Access review '{item.campaign.name}': {comment}"
    )
    return f"revoked grant #{grant.pk}"
