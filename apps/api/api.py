"""The ``NinjaAPI`` instance, its error handlers and the shapes it returns.

Errors, always ``{"error": {"code", "message", "fields"?}}``:

| status | code | when |
|---|---|---|
| 400 | ``validation_error`` | the body or a parameter is malformed (``fields`` says which) |
| 403 | ``not_allowed`` | the person may not do this (role, own request, not an approver) |
| 404 | ``not_found`` | no such object, or not one this person may see |
| 409 | ``conflict``, ``illegal_transition`` | it already exists, or the state does not allow it |
| 415 | ``unsupported_media_type`` | a write that is not ``application/json`` (CSRF) |
| 422 | ``policy_violation``, ``idempotency_key_reused`` | a resource's rule says no |

Domain errors come from the services (``AccessError`` subclasses); their messages are
the same sentences the pages show.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, tzinfo
from typing import Any, cast

from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from ninja import NinjaAPI
from ninja.errors import HttpError, ValidationError
from ninja.operation import Operation

from apps.access import reach, stages, targets
from apps.access.models import AccessRequest, Grant
from apps.access.queries import grant_of
from apps.access.schedules import rfc3339
from apps.access.states import (
    AccessError,
    Conflict,
    IllegalTransition,
    NotAllowed,
    OutsideWindow,
    RequestState,
)
from apps.accounts.models import User
from apps.accounts.timezones import zone_for

from .middleware import error_response

log = logging.getLogger(__name__)

DESCRIPTION = """\
Just-in-time access from a terminal or a script: the same rules, roles and audit trail
as the portal's pages.

**Authentication.** Send requests through Pomerium. A browser session works; a CLI gets
a Pomerium JWT from `/.pomerium/api/v1/login` and sends `Authorization: Pomerium <jwt>`.
Pomerium forwards the verified `X-Pomerium-Jwt-Assertion`; the portal trusts nothing else.

**Writes** must be `Content-Type: application/json`; cross-site requests (by
`Sec-Fetch-Site` or `Origin`) and CORS preflights are refused.

**Times** are RFC 3339, UTC (`Z`) in answers; inputs need a zone. Words (`access.label`,
`access.detail`, `outcome`) are in your zone (your preference, else the browser's, else
UTC) and name it.

**Can I get in now?** Every grant carries `access`: `allowed` (until `until`), `opens`
(at `opens_at`), `waiting` (for Pomerium), `error` (not enforced) or `ended`. Only
`allowed` means Pomerium lets the holder in now.

**Errors** are `{"error": {"code", "message", "fields"?}}`.
"""


class _API(NinjaAPI):
    def get_openapi_operation_id(self, operation: Operation) -> str:
        # The published ids name the module the operations lived in before the routers by
        # role (``apps_api_endpoints_<function>``); clients may use them, so they stay.
        return f"apps_api_endpoints_{operation.view_func.__name__}"


api = _API(
    title="jitportal API",
    version="1",
    description=DESCRIPTION,
    urls_namespace="api",
    docs_url=None,  # the interactive page loads scripts from a CDN; the document is enough
)

STATUS_CODES = {400: "validation_error", 403: "not_allowed", 404: "not_found", 405: "not_allowed"}


def request_user(request: HttpRequest) -> User:
    """The verified person (the assertion middleware lets no anonymous request through)."""
    return cast(User, request.user)


# --- Errors --------------------------------------------------------------------------------


def _access_error(request: HttpRequest, exc: AccessError) -> HttpResponse:
    if isinstance(exc, NotAllowed):
        return error_response(403, "not_allowed", str(exc))
    if isinstance(exc, IllegalTransition):
        return error_response(409, "illegal_transition", str(exc))
    if isinstance(exc, Conflict):
        return error_response(409, "conflict", str(exc))
    if isinstance(exc, OutsideWindow):
        # "Now" outside the resource's window: ``start_at`` names the next opening, to send.
        fields = {"start_at": rfc3339(exc.opens_at)}
        return error_response(422, "policy_violation", str(exc), fields)
    # PolicyViolation, and any rule of the domain without a more specific answer.
    return error_response(422, "policy_violation", str(exc))


def _field_name(loc: Any) -> str:
    parts = [str(p) for p in (loc or ()) if p not in ("body", "payload")]
    return ".".join(parts) or "body"


def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    fields: dict[str, str] = {}
    for error in exc.errors:
        name = _field_name(error.get("loc"))
        fields.setdefault(name, str(error.get("msg", "invalid"))[:300])
    return error_response(
        400, "validation_error", "Some values are missing or malformed.", fields or None
    )


def _not_found(request: HttpRequest, exc: Exception) -> HttpResponse:
    message = str(exc) if str(exc).startswith("No ") else "Not found."
    return error_response(404, "not_found", message)


def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return error_response(exc.status_code, STATUS_CODES.get(exc.status_code, "error"), str(exc))


def _unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    # A bug, not bad input: log it (never the body) and answer in the API's shape.
    log.exception("API error", extra={"path": request.path[:200]})
    request_id = getattr(request, "request_id", "")
    return error_response(
        500, "server_error", f"Something went wrong on the portal's side (request {request_id})."
    )


api.add_exception_handler(AccessError, _access_error)  # type: ignore[arg-type]
api.add_exception_handler(ValidationError, _validation_error)  # type: ignore[arg-type]
api.add_exception_handler(Http404, _not_found)  # type: ignore[arg-type]
api.add_exception_handler(HttpError, _http_error)  # type: ignore[arg-type]
api.add_exception_handler(Exception, _unexpected)  # type: ignore[arg-type]


def require(allowed: bool, message: str) -> None:
    """Refuse with 403 ``not_allowed`` unless ``allowed`` (the pages' role gates)."""
    if not allowed:
        raise NotAllowed(message)


def has_admin_perm(user: User, perm: str) -> bool:
    """What the admin's action buttons require: staff (the admin's door) and the permission."""
    return bool(user.is_active and user.is_staff and user.has_perm(perm))


# --- Shapes --------------------------------------------------------------------------------


def clock(request: HttpRequest) -> tuple[datetime, tzinfo]:
    """Now, and the zone this person reads times in (``apps.accounts.timezones.zone_for``):
    the ``label``, ``detail`` and ``outcome`` words carry it; RFC 3339 fields stay UTC."""
    return timezone.now(), zone_for(request)


def grant_out(grant: Grant, now: datetime, zone: tzinfo = UTC) -> dict[str, Any]:
    resource = grant.resource
    return {
        "id": grant.pk,
        "request_id": grant.request_id,
        "resource": resource.slug,
        "resource_name": resource.name,
        "email": grant.email,
        "state": grant.state,
        "not_before": grant.not_before,
        "expires_at": grant.expires_at,
        "is_break_glass": grant.is_break_glass,
        "sync_status": grant.sync_status,
        "access": reach.access(grant, now=now, zone=zone).as_json(),
        # Does Pomerium close the rule by itself at the end, or must the portal's worker?
        "closes_by_itself": targets.closes_by_itself(resource.cluster),
        "closing": reach.closing(grant, now=now, zone=zone),
        "live_at": grant.live_at,
        "enforced_at": grant.enforced_at,
        "revoked_at": grant.revoked_at,
        "revoke_reason": grant.revoke_reason,
        "level": grant.level.slug if grant.level_id and grant.level else None,
        "criteria": grant.criteria,
        "schedule": grant.schedule,
    }


def stages_out(req: AccessRequest) -> list[dict[str, Any]]:
    """Each approval stage of ``req``: its approvals so far and, while the request waits,
    who can approve it now (``apps.access.stages``)."""
    states, _ = stages.progress(req)
    pending = req.state == RequestState.PENDING
    waiting = {
        state.stage.number: people
        for state, people in (stages.who_can_approve(req) if pending else [])
    }
    return [
        {
            "number": state.stage.number,
            "name": state.stage.name,
            "groups": list(state.stage.groups),
            "count": state.stage.count,
            "approvers": state.approvers,
            "complete": state.complete,
            "can_approve": [p.email for p in waiting.get(state.stage.number, [])],
        }
        for state in states
    ]


def request_out(
    req: AccessRequest,
    now: datetime,
    *,
    zone: tzinfo = UTC,
    grant: Grant | bool | None = True,
    approvals: int | None = None,
    detail: bool = False,
) -> dict[str, Any]:
    """``grant=True`` looks the grant up; lists pass the one they selected (or None).
    ``detail`` adds the stages and who can approve now (a single request's answers)."""
    found = grant_of(req) if grant is True else grant or None
    if found is not None:
        found.resource = req.resource  # same resource; saves a query per row
    count = approvals if approvals is not None else getattr(req, "approval_count", None)
    if count is None:
        count = req.approvals.count()
    # Every stage's count (one stage without stages: the quorum, as before).
    required = sum(
        s.count
        for s in stages.stages_for(req.resource, req.effective_level if req.level_id else None)
    )
    return {
        "id": req.pk,
        "resource": req.resource.slug,
        "resource_name": req.resource.name,
        "kind": req.kind,
        "state": req.state,
        "outcome": reach.outcome(
            req, found, now=now, zone=zone, approvals=count, required=required
        ),
        "requester": req.requester.email,
        "filed_by": req.filed_by.email,
        "duration_minutes": req.duration_minutes,
        "approved_duration_minutes": req.approved_duration_minutes,
        "level": req.level.slug if req.level_id and req.level else None,
        "approved_level": (
            req.approved_level.slug if req.approved_level_id and req.approved_level else None
        ),
        "start_at": req.start_at,
        "justification": req.justification,
        "ticket": req.ticket,
        "created_at": req.created_at,
        "expires_at": req.expires_at,
        "decided_by": req.decided_by.email if req.decided_by else None,
        "decided_at": req.decided_at,
        "decision_reason": req.decision_reason,
        "auto_approval_note": req.auto_approval_note,
        "approvals": count,
        "approvals_required": required,
        "grant": grant_out(found, now, zone) if found is not None else None,
        "stages": stages_out(req) if detail else None,
    }


def selected_grant(req: AccessRequest) -> Grant | None:
    """The grant of a request from a list that ``select_related("grant", "extends_grant")``."""
    if req.extends_grant_id:
        return req.extends_grant
    return getattr(req, "grant", None)
