"""Routine refusals and outages answered as such: no 500, no traceback.

* **A database outage is a 503.** Whatever touched the database first (the identity
  middleware, a view, a form POST), the person gets a plain page, "jitportal is briefly
  unavailable; nothing you did was lost", with ``Retry-After``; the API its JSON error
  (``unavailable``); the log one line. Django turns an exception into a 500 at the layer
  that raised it, so this middleware (outside every layer that reads the database) learns
  of it from ``got_request_exception`` and replaces that answer; ``error_log`` keeps
  Django's traceback of it out of the log.
* **A refused role is a clear 403.** ``PermissionDenied`` from a view becomes the 403
  page, which names the role the page needs and who grants it
  (``apps.audit.errors.RoleRequired``), and Django logs one line ("Forbidden: /path"),
  not a traceback.
* **A 404 is the portal's page** even with ``DEBUG`` on (the demo), never Django's
  list of every URL (an unmarked HTML 404 is replaced by it).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.signals import got_request_exception
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseServerError, JsonResponse
from django.shortcuts import render
from django.template import loader

from apps.accounts import roles
from apps.accounts.timezones import zone_for, zone_label
from apps.audit.errors import RoleRequired

from .error_log import is_outage

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 30
UNAVAILABLE = "jitportal is briefly unavailable; nothing you did was lost."
_FLAG = "_jitportal_database_outage"

ROLE_NAMES = {
    roles.ADMIN: ("administrators", "PORTAL_ADMIN_GROUPS", "PORTAL_ADMIN_EMAILS"),
    roles.APPROVER: ("approvers", "PORTAL_APPROVER_GROUPS", "PORTAL_APPROVER_EMAILS"),
    roles.AUDITOR: ("auditors", "PORTAL_AUDITOR_GROUPS", "PORTAL_AUDITOR_EMAILS"),
}


def _note_outage(sender: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
    exc = sys.exc_info()[1]
    if request is not None and is_outage(exc):
        setattr(request, _FLAG, exc)


got_request_exception.connect(_note_outage, dispatch_uid="jitportal-database-outage")


def unavailable(request: HttpRequest, exc: BaseException) -> HttpResponse:
    """The 503 answer, logged as one line (never the exception's traceback)."""
    first_line = (str(exc).strip().splitlines() or [""])[0][:200]
    log.error(
        "database unavailable: answered 503 to %s %s (%s: %s)",
        request.method,
        request.path[:200],
        type(exc).__name__,
        first_line,
    )
    response: HttpResponse
    if request.path.startswith("/api/"):
        response = JsonResponse(
            {"error": {"code": "unavailable", "message": UNAVAILABLE}}, status=503
        )
    else:
        html = loader.get_template("errors/503.html").render(
            {
                "request_id": getattr(request, "request_id", ""),
                "retry_after": RETRY_AFTER_SECONDS,
            }
        )
        response = HttpResponse(html, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response._has_been_logged = True  # type: ignore[attr-defined]  # our line is the log
    return response


class ErrorAnswersMiddleware:
    """Place it outside every middleware that reads the database (see the module doc)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        exc = getattr(request, _FLAG, None)
        if exc is not None:
            return unavailable(request, exc)
        if settings.DEBUG and _debug_404(request, response):
            return not_found(request)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> Any:
        if is_outage(exception):
            return unavailable(request, exception)
        if request.path.startswith("/api/"):
            return None  # the API answers in its own shape
        if isinstance(exception, PermissionDenied):
            return forbidden(request, exception)
        if isinstance(exception, Http404) and settings.DEBUG:
            return not_found(request, exception)
        return None


def _debug_404(request: HttpRequest, response: HttpResponse) -> bool:
    """Django's debug 404 (an unknown address lists every URL), not one of the portal's."""
    return (
        response.status_code == 404
        and not getattr(response, PORTAL_PAGE, False)
        and not request.path.startswith("/api/")
        and response.get("Content-Type", "").startswith("text/html")
    )


PORTAL_PAGE = "jitportal_page"


# --- The pages (handler403, handler404, handler500) ---------------------------------------


def _page(
    request: HttpRequest, template: str, context: dict[str, Any], status: int
) -> HttpResponse:
    zone = zone_for(request)
    return render(request, template, {**context, "zone_name": zone_label(zone)}, status=status)


def forbidden(request: HttpRequest, exception: BaseException | None = None) -> HttpResponse:
    """The 403 page: which role the page needs and who grants it (``explain``)."""
    return _page(request, "errors/403.html", {"reason": explain(request, exception)}, 403)


def not_found(request: HttpRequest, exception: BaseException | None = None) -> HttpResponse:
    response = _page(request, "errors/404.html", {}, 404)
    setattr(response, PORTAL_PAGE, True)  # the demo's DEBUG keeps it (``_debug_404``)
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    # No base template, no context processors, no database: this page must render even
    # when whatever broke the request is still broken.
    html = loader.get_template("errors/500.html").render(
        {"request_id": getattr(request, "request_id", "")}
    )
    return HttpResponseServerError(html)


# --- Who grants a role --------------------------------------------------------------------


def who_grants(role: str) -> str:
    """Where ``role`` comes from, in this portal's configuration, for the 403 page."""
    words, groups_setting, emails_setting = ROLE_NAMES.get(role, (role + "s", "", ""))
    groups = sorted(getattr(settings, groups_setting, []) or [])
    named = bool(getattr(settings, emails_setting, []) or [])
    if groups:
        listed = ", ".join(groups)
        text = (
            f"People are {words} when their identity provider puts them in the group "
            f"{listed}: whoever manages {'that group' if len(groups) == 1 else 'those groups'} "
            "there grants it"
        )
        if named:
            text += "; the portal's administrators can also name people in its settings"
        return text + ". The portal reads your groups each time you sign in."
    if named:
        return f"The portal's administrators name its {words} in its settings."
    return f"This portal has no {words} configured; its administrators set them."


def explain(request: HttpRequest, exception: BaseException | None) -> str:
    """The 403 page's sentence: the role needed and who grants it, or what we know."""
    if isinstance(exception, RoleRequired):
        return f"{exception.doing} is for {ROLE_NAMES[exception.role][0]}. " + who_grants(
            exception.role
        )
    message = str(exception or "").strip()
    if message:
        return message
    user = getattr(request, "user", None)
    held = (
        roles.roles_for(user.email, user.group_names())
        if user is not None and user.is_authenticated
        else ()
    )
    yours = ", ".join(ROLE_NAMES[r][0].rstrip("s") for r in held) or "none"
    return (
        "This page needs a portal role you do not hold (yours: "
        f"{yours}). Approvers decide requests, auditors read the trail and the reports. "
        + who_grants(roles.APPROVER)
        + " "
        + who_grants(roles.AUDITOR)
    )
