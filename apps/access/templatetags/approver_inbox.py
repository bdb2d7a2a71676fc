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
    requests = reverse("admin:access_accessrequest_changelist")
    grants = reverse("admin:access_grant_changelist")
    links = {
        "waiting": f"{requests}?waiting=me",
        "review": f"{grants}?needs_review=yes",
        "not-enforced": f"{grants}?removal=overdue",
    }
    return {
        "items": [
            {"key": c.key, "label": c.label, "count": c.count, "url": links[c.key]}
            for c in inbox.counts_for(user, timezone.now())
        ]
    }
