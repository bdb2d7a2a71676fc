"""Reads the requester pages and the JSON API share: who may see which request and grant.

These are the visibility rules in one place. A request or grant that the person may not
see raises ``Http404``, exactly like one that does not exist, so its existence is not
confirmed.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from django.db.models import Count, Exists, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404

from .models import AccessRequest, Approval, Grant, Resource
from .states import RequestKind

if TYPE_CHECKING:
    from apps.accounts.models import User


def visible_request(user: User, pk: int) -> AccessRequest:
    """The request if ``user`` filed it, asked for it, may decide it or may read all requests."""
    req = (
        AccessRequest.objects.select_related(
            "resource", "requester", "filed_by", "decided_by", "extends_grant"
        )
        .filter(pk=pk)
        .first()
    )
    if req is None:
        raise Http404("No such request.")
    if user.pk in (req.requester_id, req.filed_by_id):
        return req
    if req.resource.is_approver(user):
        return req
    if user.is_staff and user.has_perm("access.view_accessrequest"):
        return req
    raise Http404("No such request.")


def visible_grant(user: User, pk: int) -> Grant:
    """The grant if ``user`` holds it, approves its resource or may read all grants."""
    grant = Grant.objects.select_related("resource", "user", "level").filter(pk=pk).first()
    if grant is None:
        raise Http404("No such grant.")
    if user.pk == grant.user_id or grant.resource.is_approver(user):
        return grant
    if user.is_staff and user.has_perm("access.view_grant"):
        return grant
    raise Http404("No such grant.")


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
    counted = (
        Approval.objects.filter(request=OuterRef("pk"))
        .order_by()
        .values("request")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def decidable_by(user: User, now: datetime) -> QuerySet[AccessRequest]:
    """Pending, undecided-in-time requests of others on resources ``user`` approves.

    Oldest first, each annotated with ``approval_count`` and ``approved_by_me``; the
    resources are matched in SQL (``Resource.objects.decidable_by``), so the caller can
    page the rows. The services check every rule again when the person decides.
    """
    return (
        AccessRequest.objects.pending()
        .filter(expires_at__gt=now, resource__in=Resource.objects.decidable_by(user))
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
