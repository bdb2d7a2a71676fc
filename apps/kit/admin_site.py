"""The portal's admin site: Django's, with the app list built only when a page shows it.

Django's ``each_context`` builds the list of apps and models the reader may see (every
model admin's permissions, a URL reversed per model) for every admin page, for the
navigation sidebar. Pages without the sidebar (the admin index, the requests list) never
read it: 0.5-0.7 ms of their CPU (bench/README.md, "Pages"). Here the list is built the
first time a template reads it, and at most once per call.
"""

from __future__ import annotations

from typing import Any, cast

from django.contrib import admin
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

__all__ = ["PortalAdminSite"]


class PortalAdminSite(admin.AdminSite):
    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[Any]:
        build = super().get_app_list
        return cast("list[Any]", SimpleLazyObject(lambda: build(request, app_label)))
