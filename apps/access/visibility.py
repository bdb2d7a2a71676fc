"""Who may see, and who may act on, which resource, request and grant: the one rule.

Every reader asks here, through the querysets' ``restrict(user, action)`` (NetBox's
``RestrictedQuerySet`` idea): the requester pages, the JSON API, every admin list, change
page and action, the Zero sync admin, the access reports and their exports. A row that
``restrict`` leaves out does not exist for that person: pages and the API answer 404, the
admin "not found", exactly as for an id that was never used.

The actions:

* ``VIEW``: read it. Whom it is about (a request's requester and whoever filed it, a
  grant's holder), the approvers of its resource, auditors and superusers.
* ``CHANGE``: decide a request; revoke, extend or review a grant. The approvers of its
  resource (superusers approve every resource). The services check the finer rules again
  (nobody decides their own request, an archived resource takes no decision, ...).

"The approvers of a resource" is one rule in two forms: ``approves`` for a row in memory
(the services) and ``approver_match`` in SQL (the lists), which the tests hold equal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from django.db import connections, models
from django.db.models import Q

if TYPE_CHECKING:
    from apps.accounts.models import User

    from .models import Resource

VIEW = "view"
CHANGE = "change"
ACTIONS = (VIEW, CHANGE)

Rows = TypeVar("Rows", bound=models.QuerySet[Any])


def sees_everything(user: Any) -> bool:
    """Superusers and auditors read every resource's requests and grants."""
    from apps.accounts import roles

    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    return bool(user.is_superuser or roles.holds(user, roles.AUDITOR))


def approves(user: User, resource: Resource, groups: set[str] | None = None) -> bool:
    """Whether ``user`` is an approver of ``resource``: a superuser, or in one of its
    approver groups (``groups``: the person's claim groups, when the caller has them)."""
    if user.is_superuser:
        return True
    if groups is None:
        groups = user.group_names()
    return bool(groups & set(resource.approver_groups))


def approver_match(user: User, using: str) -> Any | None:
    """A filter on resources: those ``user`` approves (``approves`` in SQL). None: none.

    Matched in the query (``ListHasAny``): a short condition, not every resource read into
    Python and its id written into every query of a page.
    """
    from .models import ListHasAny, Resource

    groups = user.group_names()
    if not groups:
        return None
    if connections[using].vendor in ListHasAny.VENDORS:
        return ListHasAny("approver_groups", groups)
    ids = [
        r.pk
        for r in Resource.objects.using(using).only("pk", "approver_groups")
        if approves(user, r, groups)
    ]
    return Q(pk__in=ids)


def restrict(
    rows: Rows, user: Any, action: str, *, resource: str, owners: tuple[str, ...] = ()
) -> Rows:
    """The rows of ``rows`` that ``user`` may ``action``.

    ``resource`` is the path from a row to its resource ("" for resources themselves);
    ``owners`` the paths to the people a row is about, who may view it.
    """
    if action not in ACTIONS:
        raise ValueError(f"Unknown action {action!r}; one of {', '.join(ACTIONS)}.")
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return rows.none()
    if user.is_superuser or (action == VIEW and sees_everything(user)):
        return rows
    allowed = Q()
    if action == VIEW:
        for path in owners:
            allowed |= Q(**{path: user})
    match = approver_match(user, rows.db)
    if match is not None:
        if resource:
            from .models import Resource

            approved = Resource.objects.using(rows.db).filter(match).values("pk")
            allowed |= Q(**{f"{resource}__in": approved})
        else:
            allowed |= Q(match)
    if not allowed:
        return rows.none()
    return rows.filter(allowed)
