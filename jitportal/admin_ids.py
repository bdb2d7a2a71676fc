"""Junk ids in admin requests are the client's mistake: 400 or 404, never a 500.

Django's admin passes the ids of an action's selection (``_selected_action``) and of a URL
straight to the database. ``abc`` fails as a ValueError, a 30-digit number overflows the
integer column, and either becomes a 500. ``AdminSelectionMiddleware`` answers 400 for any
admin POST whose selection is not all record numbers, for every model admin at once
(including those of apps that know nothing of this); ``is_valid_id`` is the rule.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest

MAX_ID = 2**63 - 1  # BigAutoField: larger numbers cannot name a row in any database


def is_valid_id(value: str) -> bool:
    return value.isascii() and value.isdigit() and 0 < int(value) <= MAX_ID


class AdminSelectionMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if (
            request.method == "POST"
            and request.path.startswith("/admin/")
            and not all(is_valid_id(v) for v in request.POST.getlist(ACTION_CHECKBOX_NAME))
        ):
            return HttpResponseBadRequest(
                "The selection holds an id that is not a record number; nothing was changed.",
                content_type="text/plain",
            )
        return self.get_response(request)
