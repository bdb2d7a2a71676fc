"""Pomerium is the front door: every request must carry a verified assertion.

``HealthCheckMiddleware`` answers ``/healthz`` before sessions or identity are touched: it
reveals nothing but "ok". The other paths served without an assertion are
``ASSERTION_EXEMPT_PATHS`` (Slack's interactivity endpoint, which verifies Slack's
signature itself).

``PomeriumAssertionMiddleware`` (after AuthenticationMiddleware) verifies the assertion on
every request, logs in the person it names, and logs the session out when the assertion
is missing, invalid, or names someone else: a session never outlives its assertion.
Rejections get a plain 403 page (503 when Pomerium's keys cannot be read), a log line and
an audit entry; there is no fallback login.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from django.conf import settings
from django.contrib import auth
from django.contrib.auth.models import AnonymousUser
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.utils.cache import patch_vary_headers

from apps.audit import context
from apps.audit.services import record_now

from .actions import AccountAction
from .assertion import AssertionRejected, Identity, verify
from .services import sync_user

if TYPE_CHECKING:
    from .models import User

log = logging.getLogger(__name__)

HEADER = "HTTP_X_POMERIUM_JWT_ASSERTION"
HEALTH_PATH = "/healthz"


class HealthCheckMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path != HEALTH_PATH:
            return self.get_response(request)
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        except DatabaseError:
            log.error("health check: database unreachable")
            return HttpResponse("unavailable\n", status=503, content_type="text/plain")
        return HttpResponse("ok\n", content_type="text/plain")


def rejection_response(request: HttpRequest, exc: AssertionRejected) -> HttpResponse:
    html = render_to_string(
        "accounts/assertion_rejected.html",
        {
            "message": exc.message,
            "code": exc.code,
            "request_id": getattr(request, "request_id", ""),
            "status": exc.status,
            "sign_out_url": settings.POMERIUM_SIGN_OUT_URL,
        },
    )
    return HttpResponse(html, status=exc.status)


class NoStoreMiddleware:
    """Pages about people's access stay out of shared and browser caches.

    Every response (pages, downloads, identity error pages) gets
    ``Cache-Control: private, no-store``; only static files and ``/healthz`` keep theirs.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.path == HEALTH_PATH or request.path.startswith(settings.STATIC_URL):
            return response
        response["Cache-Control"] = "private, no-store"
        patch_vary_headers(response, ("Cookie",))
        return response


class PomeriumAssertionMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path in settings.ASSERTION_EXEMPT_PATHS:
            # The caller proves who it is otherwise (Slack signs its requests) and the view
            # verifies that; a browser's session never acts there.
            request.user = AnonymousUser()
            return self.get_response(request)
        try:
            identity = verify(request.META.get(HEADER))
        except AssertionRejected as exc:
            return self.reject(request, exc)

        context.update(assertion_jti=identity.jti, assertion_sid=identity.sid)
        try:
            return self.sign_in(request, identity)
        except AssertionRejected as exc:  # e.g. a look-alike of an existing person
            return self.reject(request, exc)

    def sign_in(self, request: HttpRequest, identity: Identity) -> HttpResponse:
        current = request.user
        if current.is_authenticated and current.get_username() == identity.sub:
            user = sync_user(identity, user=current)
            if not user.is_active:
                auth.logout(request)
                return self.reject(
                    request, AssertionRejected("inactive", "Your portal account is disabled.")
                )
            request.user = user
        else:
            if current.is_authenticated:
                log.info("assertion names another user; ending the old session")
                auth.logout(request)
            new_user = auth.authenticate(request, identity=identity)
            if new_user is None:
                return self.reject(
                    request, AssertionRejected("inactive", "Your portal account is disabled.")
                )
            auth.login(request, new_user)
        return self.get_response(request)

    def reject(self, request: HttpRequest, exc: AssertionRejected) -> HttpResponse:
        user = request.user if request.user.is_authenticated else None
        if user is not None:
            auth.logout(request)
        log.warning(
            "assertion rejected: %s",
            exc.code,
            extra={"reason": exc.code, "path": request.path[:200]},
        )
        record_now(
            AccountAction.ASSERTION_REJECTED,
            actor=user,
            details={
                "reason": exc.code,
                "message": exc.message,
                "path": request.path[:200],
                "method": request.method,
                **exc.details,
            },
        )
        return rejection_response(request, exc)


def request_user(request: HttpRequest) -> User:
    """The signed-in person, typed as our ``User``.

    PomeriumAssertionMiddleware lets no anonymous request reach a view, so this is always
    a verified person (possibly behind Django's lazy wrapper, which the services accept).
    """
    return cast("User", request.user)
