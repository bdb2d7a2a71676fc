"""The operations of ``/api/v1/``. Each reads with ``apps.access.queries`` or calls one service.

No rule lives here: who may request, decide, revoke or extend, and what a resource
allows, are the services' (and the admin's role gates, mirrored by ``require``).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Annotated, Literal

from django.contrib.auth import get_user_model
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.utils import timezone
from ninja import Header, Path, Query, Status

from apps.access import queries, reports, schedules, services
from apps.access.admin_grants import may_see_reports
from apps.access.models import AccessLevel, AccessRequest, Grant, Resource
from apps.access.report_forms import AccessReportForm
from apps.access.states import OPEN_GRANT_STATES, IllegalTransition, PolicyViolation
from apps.access.views import ENDED_EARLY_REASON
from apps.audit import export
from apps.audit import services as audit
from apps.audit.forms import ExportForm
from apps.audit.models import AuditEvent
from apps.audit.views import download, may_export

from . import paging
from .api import (
    api,
    clock,
    grant_out,
    has_admin_perm,
    request_out,
    request_user,
    require,
    selected_grant,
)
from .middleware import error_response
from .models import MAX_KEY_LENGTH, IdempotencyKey
from .schemas import (
    AccessReportOut,
    ApprovalOut,
    ApproveIn,
    ErrorOut,
    ExtendIn,
    ExtensionRequestIn,
    GrantOut,
    PendingOut,
    ReasonIn,
    RequestIn,
    RequestOut,
    ResourceOut,
)

ObjectId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Limit = Annotated[int, Query(ge=1, le=500)]
Cursor = Annotated[str, Query(max_length=paging.MAX_CURSOR_LENGTH)]
GrantScope = Literal["mine", "all"]
RequestStateName = Literal["pending", "approved", "rejected", "cancelled", "expired"]
_KEY_RE = re.compile(rf"^[\x21-\x7e]{{1,{MAX_KEY_LENGTH}}}$")

# Every write may also meet the middleware's 415 (a body that is not application/json).
ERRORS = {400: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 415: ErrorOut, 422: ErrorOut}
READ_ERRORS = {400: ErrorOut, 403: ErrorOut, 404: ErrorOut}


# --- Resources -----------------------------------------------------------------------------


@api.get("/resources", response={200: list[ResourceOut], **READ_ERRORS}, tags=["requester"])
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
            "break_glass_allowed": bool(groups & set(r.break_glass_groups)),
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
        for r in Resource.objects.active().order_by("name").prefetch_related("levels")
        if r.may_request(user, groups)
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


@api.post(
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


@api.get("/requests", response={200: list[RequestOut], **READ_ERRORS}, tags=["requester"])
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


@api.get("/requests/{request_id}", response={200: RequestOut, **READ_ERRORS}, tags=["requester"])
def get_request(request: HttpRequest, request_id: ObjectId) -> dict[str, object]:
    """One request with its grant: yours, or one you may decide or read."""
    req = queries.visible_request(request_user(request), request_id)
    now, zone = clock(request)
    return request_out(req, now, zone=zone, detail=True)


@api.post("/requests/{request_id}/cancel", response={200: RequestOut, **ERRORS}, tags=["requester"])
def cancel_request(request: HttpRequest, request_id: ObjectId) -> dict[str, object]:
    """Withdraw your pending request."""
    user = request_user(request)
    req = queries.visible_request(user, request_id)
    services.cancel_request(req, actor=user)
    now, zone = clock(request)
    return request_out(queries.visible_request(user, request_id), now, zone=zone, detail=True)


# --- Grants --------------------------------------------------------------------------------


@api.get("/grants", response={200: list[GrantOut], **READ_ERRORS}, tags=["requester"])
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


@api.get("/grants/{grant_id}", response={200: GrantOut, **READ_ERRORS}, tags=["requester"])
def get_grant(request: HttpRequest, grant_id: ObjectId) -> dict[str, object]:
    """One grant: yours, or one on a resource you approve or may read."""
    now, zone = clock(request)
    return grant_out(queries.visible_grant(request_user(request), grant_id), now, zone)


def _own_grant(request: HttpRequest, grant_id: int) -> Grant:
    user = request_user(request)
    grant = queries.visible_grant(user, grant_id)
    require(grant.user_id == user.pk, "Only the person who holds this access can do this.")
    return grant


@api.post("/grants/{grant_id}/end", response={200: GrantOut, **ERRORS}, tags=["requester"])
def end_grant(request: HttpRequest, grant_id: ObjectId) -> dict[str, object]:
    """End your own access now (the page's *End my access*)."""
    grant = _own_grant(request, grant_id)
    services.revoke_grant(grant, actor=request_user(request), reason=ENDED_EARLY_REASON)
    now, zone = clock(request)
    return grant_out(queries.visible_grant(request_user(request), grant_id), now, zone)


@api.post(
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


# --- Approvers -----------------------------------------------------------------------------


def _require_decider(request: HttpRequest) -> None:
    require(
        has_admin_perm(request_user(request), "access.decide_accessrequest"),
        "Only approvers decide requests.",
    )


@api.get("/pending", response={200: list[PendingOut], **READ_ERRORS}, tags=["approver"])
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


@api.post(
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


@api.post("/requests/{request_id}/reject", response={200: RequestOut, **ERRORS}, tags=["approver"])
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


@api.post("/grants/{grant_id}/revoke", response={200: GrantOut, **ERRORS}, tags=["approver"])
def revoke_grant(request: HttpRequest, grant_id: ObjectId, payload: ReasonIn) -> dict[str, object]:
    """Revoke someone's grant now, with a reason."""
    user = request_user(request)
    require(has_admin_perm(user, "access.revoke_grant"), "Only approvers revoke grants.")
    grant = queries.visible_grant(user, grant_id)
    services.revoke_grant(grant, actor=user, reason=payload.reason)
    now, zone = clock(request)
    return grant_out(queries.visible_grant(user, grant_id), now, zone)


@api.post("/grants/{grant_id}/extend", response={200: GrantOut, **ERRORS}, tags=["approver"])
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


# --- Auditors ------------------------------------------------------------------------------


def _form_errors(form: ExportForm | AccessReportForm) -> HttpResponse:
    fields = {name: " ".join(str(m) for m in messages) for name, messages in form.errors.items()}
    return error_response(400, "validation_error", "Some filters are malformed.", fields)


@api.get(
    "/audit/export",
    response={200: None, **READ_ERRORS},
    tags=["auditor"],
    openapi_extra={
        "responses": {
            "200": {
                "description": "The entries, streamed (the columns of the page's export).",
                "content": {
                    "application/x-ndjson": {"schema": {"type": "string"}},
                    "text/csv": {"schema": {"type": "string"}},
                },
            }
        }
    },
)
def export_audit(
    request: HttpRequest,
    fmt: Annotated[Literal["jsonl", "csv"], Query(alias="format")] = "jsonl",
    since: Annotated[str, Query(max_length=40)] = "",
    until: Annotated[str, Query(max_length=40)] = "",
    actor: Annotated[str, Query(max_length=254)] = "",
    resource: Annotated[str, Query(max_length=64)] = "",
    action: Annotated[str, Query(max_length=64)] = "",
) -> HttpResponseBase:
    """The audit trail export stream, with the same filters as ``/audit/export``."""
    user = request_user(request)
    require(may_export(user), "Only auditors export the audit trail.")
    form = ExportForm(
        {
            "format": fmt,
            "since": since,
            "until": until,
            "actor": actor,
            "resource": resource,
            "action": action,
        }
    )
    if not form.is_valid():
        return _form_errors(form)
    filters = form.filters()
    event = export.record_export(actor=user, fmt=fmt, filters=filters.as_details(), via="api")
    name = export.filename(fmt, filters.since, filters.until, now=timezone.now())
    return download(filters.apply(AuditEvent.objects.all()), fmt=fmt, name=name, upto_seq=event.seq)


def _report(request: HttpRequest, data: dict[str, str], *, between: bool) -> object:
    require(may_see_reports(request), "Only auditors see access reports.")
    # The resources this person may see (the one rule), as on the admin's report page.
    form = AccessReportForm(
        data, between=between, resources=Resource.objects.restrict(request_user(request))
    )
    if not form.is_valid():
        return _form_errors(form)
    resource = form.cleaned_data["resource"]
    report = reports.run_report(
        request.user,
        resource,
        start=form.cleaned_data["start"] if between else None,
        end=form.cleaned_data["end"] if between else None,
        via="api",
        fmt="json",
    )
    return {
        "report": report.name,
        "resource": resource.slug if resource else None,
        "start": report.start,
        "end": report.end,
        "rows": [row.__dict__ for row in report.rows],
    }


@api.get("/reports/access", response={200: AccessReportOut, **READ_ERRORS}, tags=["auditor"])
def access_report(
    request: HttpRequest,
    resource: Annotated[str, Query(max_length=64)],
    start: Annotated[str, Query(max_length=40)],
    end: Annotated[str, Query(max_length=40)],
) -> object:
    """Who had access to a resource between ``start`` (inclusive) and ``end`` (exclusive)."""
    return _report(request, {"resource": resource, "start": start, "end": end}, between=True)


@api.get("/reports/access-now", response={200: AccessReportOut, **READ_ERRORS}, tags=["auditor"])
def access_now(request: HttpRequest, resource: Annotated[str, Query(max_length=64)] = "") -> object:
    """Who has access now (to one resource, or to all)."""
    return _report(request, {"resource": resource}, between=False)
