"""Related-object filters that cost nothing until used: search as you type.

A changelist filter such as "by requester" used to list its choices on every page view: the
people who occur in the rows the reader may see, found by walking the people table (a third
of the requests changelist's time, and its slowest query). ``AutocompleteFilter`` shows a
search box instead (the admin's own select2 widget); its choices are fetched only while the
reader types, from ``AutocompleteFiltersMixin``'s view:

    <changelist>/filter-choices/<field>/?term=ali&page=1

which answers the admin's autocomplete JSON (``{"results": [{"id", "text"}], "pagination":
{"more"}}``) with the related objects that occur in the rows of the model admin's own
``get_queryset(request)``: the page's scope (for access, the one visibility rule), never more.
The label of a chosen object comes from the same scope, so an id typed into the URL names
nobody the reader could not find by searching.

Generic: it knows no app and holds no rule; the scope is the model admin's.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.contrib.admin.widgets import get_select2_language
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, Model, OuterRef, QuerySet
from django.http import Http404, HttpRequest, JsonResponse
from django.urls import URLPattern, path, reverse

from .admin_ids import is_valid_id

__all__ = ["AutocompleteFilter", "AutocompleteFiltersMixin", "occurring"]

PAGE_SIZE = 20  # choices per answer, as Django's own autocomplete view
MAX_TERM = 100  # characters of a search term that are used
MAX_PAGE = 500


def occurring(rows: QuerySet[Any], field_path: str) -> QuerySet[Any]:
    """The objects ``field_path`` (a foreign key of ``rows``' model) points to from at
    least one of ``rows``: an ``EXISTS`` per related object, answered by the key's index."""
    field = rows.model._meta.get_field(field_path)
    related = field.remote_field.model
    return related._default_manager.filter(Exists(rows.filter(**{field_path: OuterRef("pk")})))


def _url_name(meta: Any) -> str:
    """The name of a changelist's filter-choices view (without the admin site's namespace)."""
    return f"{meta.app_label}_{meta.model_name}_filter_choices"


class AutocompleteFilter(admin.RelatedFieldListFilter):
    """A foreign-key filter whose choices are searched, not listed (see the module)."""

    template = "admin/kit/autocomplete_filter.html"

    def field_choices(self, field: Any, request: HttpRequest, model_admin: Any) -> Any:
        # Only the chosen objects, looked up in the page's scope: no query without a choice.
        chosen = [v for v in self.lookup_val or [] if is_valid_id(str(v))]
        if not chosen:
            return []
        scoped = occurring(model_admin.get_queryset(request), self.field_path)
        return [(obj.pk, str(obj)) for obj in scoped.filter(pk__in=chosen).order_by("pk")]

    def has_output(self) -> bool:
        return True

    def choices(self, changelist: ChangeList) -> Any:
        own = (self.lookup_kwarg, self.lookup_kwarg_isnull)
        kept = [
            (name, value)
            for name, values in changelist.filter_params.items()
            if name not in own
            for value in values
        ]
        meta = changelist.model._meta
        yield {
            "selected": not self.lookup_val and not self.lookup_val_isnull,
            "query_string": changelist.get_query_string(remove=list(own)),
            "display": "All",
            "autocomplete": {
                "name": self.lookup_kwarg,
                "url": reverse(
                    f"{changelist.model_admin.admin_site.name}:{_url_name(meta)}",
                    args=[self.field_path],
                ),
                "kept": kept,
                "chosen": self.lookup_choices,
                # An id the reader's scope does not hold: filtered, but named by nobody.
                "unknown": bool(self.lookup_val) and not self.lookup_choices,
                "lang": get_select2_language() or "",
            },
        }


def filter_media() -> forms.Media:
    """The admin's select2 (as its autocomplete widget loads it) and the script that applies
    a filter when a choice is made."""
    extra = "" if settings.DEBUG else ".min"
    language = get_select2_language()
    i18n = (f"admin/js/vendor/select2/i18n/{language}.js",) if language else ()
    return forms.Media(
        js=(
            f"admin/js/vendor/jquery/jquery{extra}.js",
            f"admin/js/vendor/select2/select2.full{extra}.js",
            *i18n,
            "admin/js/jquery.init.js",
            "admin/js/autocomplete.js",
            "js/admin-filters.js",
        ),
        css={
            "screen": (
                f"admin/css/vendor/select2/select2{extra}.css",
                "admin/css/autocomplete.css",
                "css/admin-filters.css",
            )
        },
    )


class AutocompleteFiltersMixin:
    """Mixed into a ``ModelAdmin`` whose ``list_filter`` uses ``AutocompleteFilter``: the
    search view its filters ask, and the scripts they need."""

    admin_site: Any
    model: type[Model]

    @property
    def media(self) -> forms.Media:
        return super().media + filter_media()  # type: ignore[misc]

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "filter-choices/<str:field_path>/",
                self.admin_site.admin_view(self.filter_choices_view),
                name=_url_name(self.model._meta),
            )
        ]
        return own + super().get_urls()  # type: ignore[misc]

    def autocomplete_filter_fields(self, request: HttpRequest) -> set[str]:
        return {
            entry[0]
            for entry in self.get_list_filter(request)  # type: ignore[attr-defined]
            if isinstance(entry, tuple) and issubclass(entry[1], AutocompleteFilter)
        }

    def filter_choices_view(self, request: HttpRequest, field_path: str) -> JsonResponse:
        if not self.has_view_or_change_permission(request):  # type: ignore[attr-defined]
            raise PermissionDenied
        if field_path not in self.autocomplete_filter_fields(request):
            raise Http404("No such filter.")
        term = request.GET.get("term", "")[:MAX_TERM].strip()
        try:
            page = min(max(int(request.GET.get("page") or 1), 1), MAX_PAGE)
        except ValueError:
            page = 1
        related = occurring(self.get_queryset(request), field_path)  # type: ignore[attr-defined]
        ordering: tuple[Any, ...] = ()
        if self.admin_site.is_registered(related.model):
            # The related admin's search, and its order (as the old choice lists were).
            other = self.admin_site.get_model_admin(related.model)
            ordering = tuple(other.get_ordering(request) or ())
            if term:
                related, duplicates = other.get_search_results(request, related, term)
                if duplicates:  # a search across a to-many relation: each object once
                    related = related.distinct()
        related = related.order_by(*ordering, "pk")  # the pk breaks ties
        start = (page - 1) * PAGE_SIZE
        found = list(related[start : start + PAGE_SIZE + 1])
        return JsonResponse(
            {
                "results": [{"id": str(obj.pk), "text": str(obj)} for obj in found[:PAGE_SIZE]],
                "pagination": {"more": len(found) > PAGE_SIZE},
            }
        )
