"""Reads the requester pages and the JSON API share.

Who may see which request and grant is ``restrict`` (``visibility``); the lookups here
raise ``Http404`` for a row it leaves out, exactly like one that does not exist, so its
existence is not confirmed.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from django.db.models import Count, Exists, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404

from apps.accounts.models import User

from .models import AccessRequest, Approval, Grant
from .states import RequestKind
from .visibility import CHANGE, VIEW


def visible_request(user: User, pk: int) -> AccessRequest:
    """The request if ``user`` may see it (``restrict``); ``Http404`` otherwise, exactly as
    for an id that does not exist."""
    req = (
        AccessRequest.objects.restrict(user, VIEW)
        .select_related("resource", "requester", "filed_by", "decided_by", "extends_grant")
        .filter(pk=pk)
        .first()
    )
    if req is None:
        raise Http404("No such request.")
    return req


def visible_grant(user: User, pk: int) -> Grant:
    """The grant if ``user`` may see it (``restrict``); ``Http404`` otherwise."""
    grant = (
        Grant.objects.restrict(user, VIEW)
        .select_related("resource", "user", "level")
        .filter(pk=pk)
        .first()
    )
    if grant is None:
        raise Http404("No such grant.")
    return grant


def grant_of(req: AccessRequest) -> Grant | None:
    """The grant this request created, or for an extension request the grant it extends."""
    if req.kind == RequestKind.EXTENSION and req.extends_grant_id:
        return req.extends_grant
    return Grant.objects.filter(request=req).first()


def approval_count() -> Coalesce:
    """An annotation: the request's approvals so far, as a subquery per row.

    A ``Count("approvals")`` join groups every request the list could show before the page
    is cut; this is evaluated only for the rows a page returns, and leaves the page's
    ``COUNT(*)`` a plain count.
    """
    return Coalesce(Subquery(_approvals_counted(), output_field=IntegerField()), 0)


@functools.cache
def _approvals_counted() -> QuerySet[Any, Any]:
    # Built once per process (five clones of a queryset): ``Subquery`` copies its query, and
    # each ``annotate`` resolves its own copy against the outer query, so nothing is shared
    # between uses. Never evaluated itself.
    return (
        Approval.objects.filter(request=OuterRef("pk"))
        .order_by()
        .values("request")
        .annotate(n=Count("pk"))
        .values("n")
    )


def email_of(path: str) -> Subquery:
    """An annotation: the email of the person the foreign key at ``path`` names (None if
    none), as a subquery per row.

    On a list that already joins its resource, levels and grant, a join per person made
    PostgreSQL spend longer planning the query than running it.
    """
    return Subquery(User.objects.filter(pk=OuterRef(path)).values("email"))


def decidable_by(user: User, now: datetime) -> QuerySet[AccessRequest]:
    """Pending, undecided-in-time requests of others on resources ``user`` approves.

    Oldest first, each annotated with ``approval_count`` and ``approved_by_me``; the
    resources are matched in SQL (``restrict(user, CHANGE)``), so the caller can page the
    rows. The services check every rule again when the person decides.
    """
    return (
        AccessRequest.objects.restrict(user, CHANGE)
        .pending()
        .filter(expires_at__gt=now)
        .exclude(requester=user)
        .select_related(
            "resource", "requester", "filed_by", "extends_grant", "level", "approved_level"
        )
        .annotate(
            approval_count=approval_count(),
            approved_by_me=Exists(Approval.objects.filter(request=OuterRef("pk"), approver=user)),
        )
        .order_by("created_at", "pk")
    )
