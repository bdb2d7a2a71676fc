"""The portal's admin site: Django's, with the app list and the navigation sidebar built only
when a page shows them, and the sidebar rendered once per list of apps and page.

Django's ``each_context`` builds the list of apps and models the reader may see (every
model admin's permissions, a URL reversed per model) for every admin page, for the
navigation sidebar. Pages without the sidebar (the admin index, the requests list) never
read it: 0.5-0.7 ms of their CPU (bench/README.md, "Pages"). Here the list is built the
first time a template reads it, and at most once per call.

The sidebar's HTML is a function of that list, the page's path and the language (Django's
``admin/nav_sidebar.html`` and ``admin/app_list.html`` read nothing else); the base
template (``admin/base_site.html``) prints ``nav_sidebar``, rendered once per distinct
input in a process: 0.8-1 ms of the template engine on every page with the sidebar.
"""

from __future__ import annotations

from typing import Any, cast

from django.contrib import admin
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils.functional import SimpleLazyObject
from django.utils.safestring import SafeString
from django.utils.translation import get_language

from .memo import frozen, memo

__all__ = ["PortalAdminSite"]

_SIDEBARS: dict[Any, str] = {}


class PortalAdminSite(admin.AdminSite):
    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[Any]:
        build = super().get_app_list
        return cast("list[Any]", SimpleLazyObject(lambda: build(request, app_label)))

    def each_context(self, request: HttpRequest) -> dict[str, Any]:
        context = super().each_context(request)
        apps = context["available_apps"]
        context["nav_sidebar"] = SimpleLazyObject(lambda: nav_sidebar(request, apps))
        return context


def nav_sidebar(request: HttpRequest, apps: list[Any]) -> SafeString:
    """What ``{% include "admin/nav_sidebar.html" %}`` renders for ``apps`` on this page."""
    key = (frozen(list(apps)), request.path, get_language())
    html: str = memo(
        _SIDEBARS,
        key,
        lambda: render_to_string(
            "admin/nav_sidebar.html", {"available_apps": apps, "request": request}
        ),
    )
    return SafeString(html)
