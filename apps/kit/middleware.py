"""Pages never show a hidden character raw (``apps.kit.text``).

Every HTML response, the admin's included, passes through ``reveal_bytes`` on its way out,
so text already stored (an old justification) or sent by the identity provider (a display
name) shows ``[U+202E]`` where it carries a right-to-left override, whichever template, form
widget or admin column printed it. Input is refused earlier, with a field error.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from .text import reveal_bytes


class RevealHiddenMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.streaming
            or not response.get("Content-Type", "").startswith("text/html")
            or (response.charset or "utf-8").lower().replace("-", "") != "utf8"
        ):
            return response
        content = response.content
        revealed = reveal_bytes(content)
        if revealed is not content:
            response.content = revealed
            if response.has_header("Content-Length"):
                response["Content-Length"] = str(len(revealed))
        return response
