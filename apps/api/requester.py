"""The requester's operations: resources, their own requests and grants (tag ``requester``)."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Annotated

from django.contrib.auth import get_user_model
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from ninja import Header, Router, Status

from apps.access import queries, schedules, services
from apps.access.models import AccessLevel, AccessRequest, Grant, Resource, breaks_glass
from apps.access.states import OPEN_GRANT_STATES, IllegalTransition, PolicyViolation
from apps.audit import services as audit

from . import paging
from .api import (
    api,
    clock,
    grant_out,
    request_out,
    request_user,
    require,
    selected_grant,
)
from .middleware import error_response
from .models import MAX_KEY_LENGTH, IdempotencyKey
from .params import ERRORS, READ_ERRORS, Cursor, GrantScope, Limit, ObjectId, RequestStateName
from .schemas import (
    ExtensionRequestIn,
    GrantOut,
    RequestIn,
    RequestOut,
    ResourceOut,
)

_KEY_RE = re.compile(rf"^[\x21-\x7e]{{1,{MAX_KEY_LENGTH}}}$")

router = Router()


# --- Resources -----------------------------------------------------------------------------


@router.get("/resources", response={200: list[ResourceOut], **READ_ERRORS}, tags=["requester"])
def list_resources(request: HttpRequest) -> list[dict[str, object]]:
    """The resources you may request, with their durations, rules and flags."""
    user = request_user(request)
    groups = user.group_names()
    open_grants = dict(Grant.objects.open().filter(user=user).values_list("resource_id", "pk"))
    return [
        {
            "slug": r.slug,
            "name": r.name,
            "description": r.description,
            "durations_minutes": sorted(set(r.duration_choices)),
            "max_duration_minutes": r.max_duration_minutes,
            "justification_required": r.justification_required,
            "justification_min_length": r.justification_min_length,
            "ticket_required": r.ticket_required,
            "allow_scheduled": r.allow_scheduled,
            "max_schedule_ahead_days": r.max_schedule_ahead_days,
            "approvals_required": r.approvals_required,
            "break_glass_allowed": breaks_glass(r.break_glass_groups, groups),
            "break_glass_max_minutes": r.break_glass_max_minutes,
            "open_grant_id": open_grants.get(r.pk),
            "levels": [
                {
                    "slug": lv.slug,
                    "name": lv.name,
                    "rank": lv.rank,
                    "criteria": lv.criteria,
                    "max_duration_minutes": r.max_minutes(lv),
                    "approvals_required": r.approvals_needed(lv),
                }
                for lv in r.levels.all()
            ],
            "schedule": _schedule_out(r.schedule),
        }
        for r in Resource.objects.requestable_by(user)
    ]


def _schedule_out(schedule: object) -> dict[str, str] | None:
    parsed = schedules.parse(schedule) if schedule else None
    if parsed is None:
        return None
    return {**schedules.as_json(parsed), "text": schedules.describe(parsed)}


def _level(resource: Resource, slug: str | None) -> AccessLevel | None:
    """The resource's level named ``slug``; PolicyViolation (422) if it has none such."""
    if slug is None:
        return None
    level = resource.levels.filter(slug=slug).first()
    if level is None:
        raise PolicyViolation(f"{resource.name} has no access level {slug!r}.")
    return level


# --- Requests ------------------------------------------------------------------------------


def _fingerprint(payload: RequestIn) -> str:
    canonical = json.dumps(payload.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _replay(
    request: HttpRequest, key: IdempotencyKey, fingerprint: str
) -> dict[str, object] | HttpResponse:
    if key.fingerprint != fingerprint:
        return error_response(
            422,
            "idempotency_key_reused",
            "This Idempotency-Key was already used with a different request body.",
            {"Idempotency-Key": "use a new key for a different request"},
        )
    req = queries.visible_request(key.user, key.access_request_id)
    now, zone = clock(request)
    return request_out(req, now, zone=zone, detail=True)


@router.post(
    "/requests",
    response={201: RequestOut, **ERRORS},
    tags=["requester"],
)
def create_request(
    request: HttpRequest,
    payload: RequestIn,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", max_length=MAX_KEY_LENGTH)
    ] = None,
) -> Status | HttpResponse:
    """File a request, the same fields as the form. With a live grant it asks for an extension.

    An ``Idempotency-Key`` (1-200 visible ASCII characters, yours alone) makes a retried
    POST answer with the request the first one filed (201 again, ``Idempotent-Replayed:
    true``); the same key with another body is a 422 ``idempotency_key_reused``.
    """
    user = request_user(request)
    if idempotency_key is not None and not _KEY_RE.match(idempotency_key):
        return error_response(
            400,
            "validation_error",
            "The Idempotency-Key must be 1 to 200 visible ASCII characters.",
            {"Idempotency-Key": "1 to 200 visible ASCII characters"},
        )
    fingerprint = _fingerprint(payload)
    # One unit of work: the submission's entries are chained once, after the key is saved.
    with audit.atomic():
        if idempotency_key is not None:
            # The lock submit_request takes first anyway: a retry racing its original
            # waits here until the original committed, then finds its key.
            get_user_model().objects.select_for_update().filter(pk=user.pk).first()
            known = IdempotencyKey.objects.filter(user=user, key=idempotency_key).first()
            if known is not None:
                replay = _replay(request, known, fingerprint)
                if isinstance(replay, HttpResponse):
                    return replay
                response = api.create_response(request, replay, status=201)
                response["Idempotent-Replayed"] = "true"
                return response
        resource = Resource.objects.filter(slug=payload.resource).first()
        if resource is None:
            raise Http404("No resource with that name.")
        req = services.submit_request(
            requester=user,
            resource=resource,
            duration_minutes=payload.duration_minutes,
            justification=payload.justification,
            ticket=payload.ticket,
            start_at=payload.start_at,
            level=_level(resource, payload.level),
        )
        if idempotency_key is not None:
            IdempotencyKey.objects.create(
                user=user,
                key=idempotency_key,
                fingerprint=fingerprint,
                access_request=req,
                created_at=timezone.now(),
            )
    now, zone = clock(request)
    return Status(
        201, request_out(queries.visible_request(user, req.pk), now, zone=zone, detail=True)
    )


@router.get("/requests", response={200: list[RequestOut], **READ_ERRORS}, tags=["requester"])
def list_requests(
    request: HttpRequest,
    response: HttpResponse,
    state: RequestStateName | None = None,
    limit: Limit = 100,
    cursor: Cursor = "",
) -> list[dict[str, object]]:
    """Your requests, newest first (those you asked for or filed for someone).

    At most ``limit`` (up to 500) a page; the ``Link`` header (``rel="next"``) and
    ``X-Next-Cursor`` name the next page while more follow.
    """
    user = request_user(request)
    rows = (
        AccessRequest.objects.filter(requester=user)
        .select_related(
            "resource",
            "requester",
            "filed_by",
            "decided_by",
            "grant",
            "extends_grant",
            "level",
            "approved_level",
            "grant__level",
            "extends_grant__level",
        )
        .annotate(approval_count=queries.approval_count())
    )
    if state:
        rows = rows.filter(state=state)
    found, next_cursor = paging.page(
        rows, field="created_at", newest_first=True, limit=limit, cursor=cursor
    )
    paging.link_next(request, response, next_cursor)
    now, zone = clock(request)
    return [request_out(r, now, zone=zone, grant=selected_grant(r)) for r in found]


@router.get("/requests/{request_id}", response={200: RequestOut, **READ_ERRORS}, tags=["requester"])
def get_request(request: HttpRequest, request_id: ObjectId) -> dict[str, object]:
    """One request with its grant: yours, or one you may decide or read."""
    req = queries.visible_request(request_user(request), request_id)
    now, zone = clock(request)
    return request_out(req, now, zone=zone, detail=True)


@router.post(
    "/requests/{request_id}/cancel", response={200: RequestOut, **ERRORS}, tags=["requester"]
)
def cancel_request(request: HttpRequest, request_id: ObjectId) -> dict[str, object]:
    """Withdraw your pending request."""
    user = request_user(request)
    req = queries.visible_request(user, request_id)
    services.cancel_request(req, actor=user)
    now, zone = clock(request)
    return request_out(queries.visible_request(user, request_id), now, zone=zone, detail=True)


# --- Grants --------------------------------------------------------------------------------


@router.get("/grants", response={200: list[GrantOut], **READ_ERRORS}, tags=["requester"])
def list_grants(
    request: HttpRequest,
    response: HttpResponse,
    open: bool = False,
    scope: GrantScope = "mine",
    limit: Limit = 100,
    cursor: Cursor = "",
) -> list[dict[str, object]]:
    """Your grants, latest start first; ``open=true`` for scheduled and active ones only.

    ``scope=all``: every grant you may see, not only yours: for approvers, those on the
    resources they approve; for auditors and superusers, all (``jit grants``).
    Paged like ``GET /requests`` (``limit``, ``cursor``, ``Link``/``X-Next-Cursor``).
    """
    user = request_user(request)
    # The one visibility rule: a person's own grants, and those on resources they approve
    # (auditors and superusers: all).
    rows = (
        Grant.objects.restrict(user) if scope == "all" else Grant.objects.filter(user=user)
    ).select_related("resource", "level")
    if open:
        rows = rows.filter(state__in=OPEN_GRANT_STATES)
    found, next_cursor = paging.page(
        rows, field="not_before", newest_first=True, limit=limit, cursor=cursor
    )
    paging.link_next(request, response, next_cursor)
    now, zone = clock(request)
    return [grant_out(g, now, zone) for g in found]


@router.get("/grants/{grant_id}", response={200: GrantOut, **READ_ERRORS}, tags=["requester"])
def get_grant(request: HttpRequest, grant_id: ObjectId) -> dict[str, object]:
    """One grant: yours, or one on a resource you approve or may read."""
    now, zone = clock(request)
    return grant_out(queries.visible_grant(request_user(request), grant_id), now, zone)


def _own_grant(request: HttpRequest, grant_id: int) -> Grant:
    user = request_user(request)
    grant = queries.visible_grant(user, grant_id)
    require(grant.user_id == user.pk, "Only the person who holds this access can do this.")
    return grant


@router.post("/grants/{grant_id}/end", response={200: GrantOut, **ERRORS}, tags=["requester"])
def end_grant(request: HttpRequest, grant_id: ObjectId) -> dict[str, object]:
    """End your own access now (the page's *End my access*)."""
    grant = _own_grant(request, grant_id)
    services.end_own_grant(grant, actor=request_user(request))
    now, zone = clock(request)
    return grant_out(queries.visible_grant(request_user(request), grant_id), now, zone)


@router.post(
    "/grants/{grant_id}/extension-requests",
    response={201: RequestOut, **ERRORS},
    tags=["requester"],
)
def request_extension(
    request: HttpRequest, grant_id: ObjectId, payload: ExtensionRequestIn
) -> Status:
    """Ask for more time on your live grant: an extension request, decided like any other."""
    grant = _own_grant(request, grant_id)
    if not grant.is_open_at(timezone.now()):
        raise IllegalTransition("This grant has ended; request the resource anew.")
    user = request_user(request)
    req = services.submit_request(
        requester=user,
        resource=grant.resource,
        duration_minutes=payload.duration_minutes,
        justification=payload.justification,
        ticket=payload.ticket,
        level=_level(grant.resource, payload.level),
    )
    now, zone = clock(request)
    return Status(
        201, request_out(queries.visible_request(user, req.pk), now, zone=zone, detail=True)
    )
