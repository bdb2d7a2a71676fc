"""Opens the audit/log context for each request: request id, source address, user agent.

The portal is reachable only through Pomerium, which *appends* the address it saw to
whatever ``X-Forwarded-For`` the client sent. So the client address is the entry
``TRUSTED_PROXY_COUNT`` places from the right (1: the one Pomerium added); entries further
left are the client's own words and never reach the trail. With no such entry the
socket's peer (``REMOTE_ADDR``) is used.

The request id is always the portal's own. A proxy's id (Envoy's ``X-Request-Id``) is kept
apart in ``upstream_request_id``, and only when the request came through a trusted
proxy (``TRUSTED_PROXY_COUNT`` > 0), so a client cannot make two people's actions share an
id.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_ipv46_address
from django.http import HttpRequest, HttpResponse

from . import context

# An upstream id is kept (apart from ours) only when it looks like one.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")


def client_ip(request: HttpRequest) -> str | None:
    """The client's address as the trusted proxies saw it (see the module docstring)."""
    trusted = max(0, int(settings.TRUSTED_PROXY_COUNT))
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [part for part in forwarded if part]
    if trusted and len(forwarded) >= trusted:
        candidate = forwarded[-trusted]
    else:
        candidate = request.META.get("REMOTE_ADDR", "")
    if not candidate:
        return None
    try:
        validate_ipv46_address(candidate)
    except ValidationError:
        return None
    return candidate


class RequestContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = context.new_request_id()
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        upstream = (
            incoming if settings.TRUSTED_PROXY_COUNT > 0 and _REQUEST_ID.match(incoming) else ""
        )
        token = context.activate(
            context.AuditContext(
                request_id=request_id,
                upstream_request_id=upstream,
                ip=client_ip(request),
                user_agent=request.META.get("HTTP_USER_AGENT", "")[:512],
                channel="web",  # the API's middleware says "api" for its own paths
            )
        )
        request.request_id = request_id  # type: ignore[attr-defined]
        try:
            response = self.get_response(request)
        finally:
            context.deactivate(token)
        response["X-Request-Id"] = request_id
        return response
