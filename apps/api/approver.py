"""The approver's operations: the pending queue, decisions, revoking and extending (tag
``approver``)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import Router

from apps.access import queries, services

from . import paging
from .api import (
    clock,
    grant_out,
    has_admin_perm,
    request_out,
    request_user,
    require,
)
from .params import ERRORS, READ_ERRORS, Cursor, Limit, ObjectId
from .requester import _level
from .schemas import (
    ApprovalOut,
    ApproveIn,
    ExtendIn,
    GrantOut,
    PendingOut,
    ReasonIn,
    RequestOut,
)

router = Router()


# --- Approvers -----------------------------------------------------------------------------


def _require_decider(request: HttpRequest) -> None:
    require(
        has_admin_perm(request_user(request), "access.decide_accessrequest"),
        "Only approvers decide requests.",
    )


@router.get("/pending", response={200: list[PendingOut], **READ_ERRORS}, tags=["approver"])
def list_pending(
    request: HttpRequest, response: HttpResponse, limit: Limit = 100, cursor: Cursor = ""
) -> list[dict[str, object]]:
    """Pending requests of others that you may decide, oldest first.

    Paged like ``GET /requests`` (``limit``, ``cursor``, ``Link``/``X-Next-Cursor``).
    """
    _require_decider(request)
    now, zone = clock(request)
    found, next_cursor = paging.page(
        queries.decidable_by(request_user(request), now),
        field="created_at",
        newest_first=False,
        limit=limit,
        cursor=cursor,
    )
    paging.link_next(request, response, next_cursor)
    return [
        {
            **request_out(r, now, zone=zone, grant=r.extends_grant),
            "approved_by_me": r.approved_by_me,  # type: ignore[attr-defined]
        }
        for r in found
    ]


@router.post(
    "/requests/{request_id}/approve", response={200: ApprovalOut, **ERRORS}, tags=["approver"]
)
def approve_request(
    request: HttpRequest, request_id: ObjectId, payload: ApproveIn
) -> dict[str, object]:
    """Approve (optionally for a shorter time, with a note). ``grant`` is null until quorum."""
    _require_decider(request)
    user = request_user(request)
    req = queries.visible_request(user, request_id)
    grant = services.approve_request(
        req,
        approver=user,
        duration_minutes=payload.duration_minutes,
        level=_level(req.resource, payload.level),
        note=payload.note,
    )
    now, zone = clock(request)
    fresh = queries.visible_request(user, request_id)
    return {
        "request": request_out(fresh, now, zone=zone, detail=True),
        "grant": grant_out(queries.visible_grant(user, grant.pk), now, zone) if grant else None,
    }


@router.post(
    "/requests/{request_id}/reject", response={200: RequestOut, **ERRORS}, tags=["approver"]
)
def reject_request(
    request: HttpRequest, request_id: ObjectId, payload: ReasonIn
) -> dict[str, object]:
    """Reject with a reason (shown to the requester)."""
    _require_decider(request)
    user = request_user(request)
    req = queries.visible_request(user, request_id)
    services.reject_request(req, approver=user, reason=payload.reason)
    now, zone = clock(request)
    return request_out(queries.visible_request(user, request_id), now, zone=zone, detail=True)


@router.post("/grants/{grant_id}/revoke", response={200: GrantOut, **ERRORS}, tags=["approver"])
def revoke_grant(request: HttpRequest, grant_id: ObjectId, payload: ReasonIn) -> dict[str, object]:
    """Revoke someone's grant now, with a reason."""
    user = request_user(request)
    require(has_admin_perm(user, "access.revoke_grant"), "Only approvers revoke grants.")
    grant = queries.visible_grant(user, grant_id)
    services.revoke_grant(grant, actor=user, reason=payload.reason)
    now, zone = clock(request)
    return grant_out(queries.visible_grant(user, grant_id), now, zone)


@router.post("/grants/{grant_id}/extend", response={200: GrantOut, **ERRORS}, tags=["approver"])
def extend_grant(request: HttpRequest, grant_id: ObjectId, payload: ExtendIn) -> dict[str, object]:
    """Move a grant's end later (past the resource's maximum only with ``override``)."""
    user = request_user(request)
    require(has_admin_perm(user, "access.extend_grant"), "Only approvers extend grants.")
    grant = queries.visible_grant(user, grant_id)
    services.extend_grant(
        grant,
        actor=user,
        new_expires_at=payload.expires_at,
        reason=payload.reason,
        override=payload.override,
    )
    now, zone = clock(request)
    return grant_out(queries.visible_grant(user, grant_id), now, zone)
