"""The API's front door: channel, CSRF and JSON-only errors for everything under ``/api/``.

Why the API cannot rely on "no cookie, no CSRF": behind Pomerium a browser with a
Pomerium session gets a fresh assertion added to *any* request it sends to the portal,
cross-site ones included. So an attacker's page could make the victim's browser call the
API with the victim's identity. The defence, checked here before the person is even
signed in (so a refused request changes nothing, not even a session):

1. **Writes must be ``Content-Type: application/json``** (else 415). A cross-site HTML form
   can only send ``application/x-www-form-urlencoded``, ``multipart/form-data`` or
   ``text/plain``; anything else makes the browser send a CORS preflight first.
2. **No CORS preflight is ever granted**: ``OPTIONS`` is refused (403) and no response
   carries ``Access-Control-Allow-*``, so a browser never sends the JSON write itself.
3. **Cross-site requests are refused** (403) when the browser says so: ``Sec-Fetch-Site``
   ``cross-site`` or ``same-site`` (a sibling subdomain is another origin), or an
   ``Origin`` that is neither the portal's own nor in ``CSRF_TRUSTED_ORIGINS``. This
   covers reads too (an export writes an audit entry). A CLI sends neither header.

Errors from outside the API's views (a rejected assertion, an unknown path, a 500) are
turned into the API's JSON error shape here, so a client never has to parse HTML.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase

from apps.audit import context

PREFIX = "/api/"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
JSON_TYPE = "application/json"
REFUSED_FETCH_SITES = frozenset({"cross-site", "same-site"})

_FALLBACK = {
    400: ("bad_request", "The request could not be read."),
    403: (
        "not_signed_in",
        "Pomerium's identity assertion is missing, expired or invalid. Sign in again "
        "(from a terminal: run `jit login`).",
    ),
    404: ("not_found", "There is nothing at this address."),
    405: ("method_not_allowed", "This address does not take that method."),
    413: ("too_large", "The request is too large."),
    503: ("unavailable", "The portal cannot verify identities right now; try again shortly."),
}


def error_response(
    status: int, code: str, message: str, fields: dict[str, str] | None = None
) -> JsonResponse:
    """The API's one error shape: ``{"error": {"code", "message", "fields"?}}``."""
    body: dict[str, object] = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    return JsonResponse({"error": body}, status=status)


def _own_origin(request: HttpRequest) -> str:
    return f"{request.scheme}://{request.get_host()}"


def cross_site_reason(request: HttpRequest) -> str | None:
    """Why this request looks cross-site, or None. Raises ``DisallowedHost`` for a bad Host."""
    site = request.META.get("HTTP_SEC_FETCH_SITE", "").strip().lower()
    if site in REFUSED_FETCH_SITES:
        return f"The browser says this request is {site} (Sec-Fetch-Site)."
    origin = request.META.get("HTTP_ORIGIN")
    if origin is not None:
        allowed = {_own_origin(request), *settings.CSRF_TRUSTED_ORIGINS}
        if origin not in allowed:
            return "The request comes from another origin (Origin header)."
    return None


class ApiGuardMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if not request.path.startswith(PREFIX):
            return self.get_response(request)
        context.update(channel="api")
        refused = self.refuse(request)
        response = refused or self.get_response(request)
        # Cache-Control: private, no-store comes from accounts' NoStoreMiddleware, as on
        # every page.
        return self.as_json_error(response)

    def refuse(self, request: HttpRequest) -> HttpResponse | None:
        if request.method == "OPTIONS":
            return error_response(
                403, "cors_refused", "The portal grants no cross-origin (CORS) requests."
            )
        try:
            reason = cross_site_reason(request)
        except DisallowedHost:
            return error_response(400, "bad_host", "The Host header names another site.")
        if reason:
            return error_response(403, "cross_site", f"Refused: {reason}")
        if request.method in WRITE_METHODS and (request.content_type or "").lower() != JSON_TYPE:
            return error_response(
                415, "unsupported_media_type", "Send the body as Content-Type: application/json."
            )
        return None

    def as_json_error(self, response: HttpResponseBase) -> HttpResponseBase:
        if response.status_code < 400 or response.get("Content-Type", "").startswith(JSON_TYPE):
            return response
        code, message = _FALLBACK.get(
            response.status_code, ("server_error", "Something went wrong on the portal's side.")
        )
        converted = error_response(response.status_code, code, message)
        for name in ("X-Request-Id", "Retry-After"):
            if name in response:
                converted[name] = response[name]
        return converted
