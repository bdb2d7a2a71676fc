"""Generic admin pieces every app's admin builds on; they know no app and hold no rule.

* ``ReadOnlyModelAdmin``: viewable, never added, edited or deleted in the admin (a model
  admin or an inline); no "delete selected" action;
* ``ColumnsChangeList`` / ``FastChangeListMixin``: changelists that load only the columns
  their rows show (``list_only``) and render them per column (``apps.kit.admin_lists``);
* ``StrictIdsMixin``: a junk id in a URL is "not found", never a 500;
* ``BoundedRelatedOnlyFilter``: a related-object filter with at most ``limit`` choices.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.admin.views.main import ChangeList
from django.db.models import Exists, OuterRef
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext

from .admin_ids import is_valid_id
from .admin_lists import FastListAdmin, FastResultsChangeList

__all__ = [
    "BoundedRelatedOnlyFilter",
    "ColumnsChangeList",
    "FastChangeListMixin",
    "ReadOnlyModelAdmin",
    "StrictIdsMixin",
    "without_delete_selected",
]


def without_delete_selected(actions: dict[str, Any]) -> dict[str, Any]:
    # Deleting would bypass the services and erase history; archive or revoke instead.
    actions.pop("delete_selected", None)
    return actions


class ReadOnlyModelAdmin:
    """Mixed into a ``ModelAdmin`` or an inline: records that only services change are
    viewable, never added, edited or deleted in the admin."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        return without_delete_selected(super().get_actions(request))  # type: ignore[misc]


class ColumnsChangeList(FastResultsChangeList):
    """A changelist that loads only its model admin's ``list_only`` columns for the rows,
    and renders them per column (``apps.kit.admin_lists``).

    Only the rows shown are narrowed: the filters, the counts, the selection an action
    receives and any export still see the full queryset.
    """

    def get_results(self, request: HttpRequest) -> None:
        columns = getattr(self.model_admin, "list_only", ())
        full = self.queryset
        if columns:
            self.queryset = full.only(*columns)
        try:
            super().get_results(request)
        finally:
            self.queryset = full


class BoundedRelatedOnlyFilter(admin.RelatedOnlyFieldListFilter):
    """``RelatedOnlyFieldListFilter`` with at most ``limit`` choices.

    Django's lists every related object that occurs in the changelist: an approver with
    10,000 requesters got 10,000 links on every page view. Beyond the limit the list shows
    the first ones (in the related admin's order), any selected one, and says so in its
    title; the URL parameter still filters by any id.
    """

    limit = 50

    def __init__(self, field: Any, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        self.truncated = False
        super().__init__(field, request, *args, **kwargs)
        if self.truncated:
            self.title = f"{self.title} (first {self.limit}; search for others)"

    # The first choices are looked for among this many related objects at a time, in order,
    # for at most ``walk_steps`` steps; then in one query over every row of the changelist.
    walk = 200
    walk_steps = 3

    def field_choices(self, field: Any, request: HttpRequest, model_admin: Any) -> Any:
        rows = model_admin.get_queryset(request)
        pk_qs = rows.distinct().values_list(f"{self.field_path}__pk", flat=True)
        model = field.remote_field.model
        ordering = self.field_admin_ordering(field, request, model_admin) or ("pk",)
        # The primary key breaks ties, so every walk step and the one query agree on order.
        ordering = (*ordering, "pk")
        related = model._default_manager.filter(pk__in=pk_qs).order_by(*ordering)
        shown = self._walk(model, ordering, rows)
        if shown is None:
            shown = list(related[: self.limit + 1])
        if len(shown) > self.limit:
            self.truncated = True
            shown = shown[: self.limit]
            selected = {v for v in self.lookup_val or [] if is_valid_id(str(v))}
            missing = selected - {str(obj.pk) for obj in shown}
            if missing:
                shown += list(related.filter(pk__in=missing))
        return [(obj.pk, str(obj)) for obj in shown]

    def _walk(self, model: Any, ordering: tuple[str, ...], rows: Any) -> list[Any] | None:
        """The first ``limit + 1`` related objects (in ``ordering``) that occur in ``rows``,
        found by reading the related objects in order, ``walk`` at a time, and asking the
        changelist's index on the foreign key about each: a few milliseconds where finding
        every distinct one among 10,000 rows took tens. None if ``walk_steps`` steps do not
        settle it (few of the related objects occur in this changelist)."""
        ordered = model._default_manager.order_by(*ordering)
        occurs = Exists(rows.filter(**{self.field_path: OuterRef("pk")}))
        found: list[Any] = []
        for step in range(self.walk_steps):
            window = list(
                ordered.values_list("pk", flat=True)[step * self.walk : (step + 1) * self.walk]
            )
            found += ordered.filter(pk__in=window).filter(occurs)[: self.limit + 1 - len(found)]
            if len(found) > self.limit or len(window) < self.walk:
                return found  # enough, or every related object has been looked at
        return None


ACTION_CHECKBOX = (
    '<input type="checkbox" name="{}" value="{}" class="action-select" aria-label="{}">'
)


class FastChangeListMixin(FastListAdmin):
    """Changelists whose rows cost little: only the columns they show, rendered once per
    column (``FastListAdmin``), plain checkboxes."""

    # The columns the changelist's rows need (``ColumnsChangeList``); empty loads them all.
    list_only: tuple[str, ...] = ()

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return ColumnsChangeList

    def action_checkbox(self, obj: Any) -> SafeString:
        # The same markup as Django's CheckboxInput renders, without a template render per
        # row (a third of a 100-row changelist's time).
        label = format_html(gettext("Select this object for an action - {}"), str(obj))
        return format_html(ACTION_CHECKBOX, helpers.ACTION_CHECKBOX_NAME, str(obj.pk), label)


class StrictIdsMixin(FastChangeListMixin):
    """A junk id in a URL is "not found", never a 500 (a selection is checked earlier, by
    ``apps.kit.admin_ids.AdminSelectionMiddleware``).

    "Not found" is a 404, as on the requester pages and in the API: an id the page's
    ``get_queryset`` leaves out (``restrict``) gets exactly the answer of an id never used.
    """

    def get_object(
        self, request: HttpRequest, object_id: str, from_field: str | None = None
    ) -> Any:
        if from_field is None and not is_valid_id(str(object_id)):
            return None  # the admin answers "doesn't exist", as for any unknown id
        return super().get_object(request, object_id, from_field)

    def _get_obj_does_not_exist_redirect(
        self, request: HttpRequest, opts: Any, object_id: str
    ) -> HttpResponse:
        # Django's answer is a redirect to the index with "... doesn't exist"; ours is the
        # site's 404 page, the same for a hidden id and a missing one.
        raise Http404(f"No {opts.verbose_name} with that id.")
