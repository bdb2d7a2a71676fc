"""``{% waiting_for_me %}``: the approver's counts on the admin index (``apps.access.inbox``)."""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import reverse
from django.utils import timezone

from apps.access import inbox

register = template.Library()


@register.inclusion_tag("admin/access/_waiting_for_me.html", takes_context=True)
def waiting_for_me(context: Any) -> dict[str, Any]:
    """What waits for the reader, each count linked to the list that shows those rows;
    only the counts their role can act on or read."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"items": []}
    now = timezone.now()
    requests = reverse("admin:access_accessrequest_changelist")
    grants = reverse("admin:access_grant_changelist")
    items = []
    if user.has_perm("access.decide_accessrequest"):
        items.append(
            {
                "key": "waiting",
                "count": inbox.waiting_for(user, now).order_by().count(),
                "label": "pending for me",
                "url": f"{requests}?waiting=me",
            }
        )
    if user.has_perm("access.review_grant"):
        items.append(
            {
                "key": "review",
                "count": inbox.to_review(user).order_by().count(),
                "label": "break-glass to review",
                "url": f"{grants}?needs_review=yes",
            }
        )
    if user.has_perm("access.view_grant"):
        items.append(
            {
                "key": "not-enforced",
                "count": inbox.not_enforced(user, now).order_by().count(),
                "label": "revocations not yet enforced",
                "url": f"{grants}?removal=overdue",
            }
        )
    return {"items": items}
