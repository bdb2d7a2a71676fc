"""Generic admin pieces every app's admin builds on; they know no app and hold no rule.

* ``ReadOnlyModelAdmin``: viewable, never added, edited or deleted in the admin (a model
  admin or an inline); no "delete selected" action;
* ``ColumnsChangeList`` / ``FastChangeListMixin``: changelists that load only the columns
  their rows show (``list_only``) and render them per column (``apps.kit.admin_lists``);
* ``StrictIdsMixin``: a junk id in a URL is "not found", never a 500;
"""

from __future__ import annotations

import functools
from typing import Any

from django.contrib.admin import helpers
from django.contrib.admin.views.main import ChangeList
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.html import escape
from django.utils.safestring import SafeString
from django.utils.translation import get_language, gettext

from .admin_ids import is_valid_id
from .admin_lists import FastListAdmin, FastResultsChangeList

__all__ = [
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


@functools.cache
def _action_label(language: str | None) -> str:
    return gettext("Select this object for an action - {}")


_CHECKBOX_NAME = escape(helpers.ACTION_CHECKBOX_NAME)
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
        # format_html twice, without its argument walks: the label's text translated once
        # per language, the object's text and id escaped.
        label = _action_label(get_language()).format(escape(str(obj)))
        return SafeString(ACTION_CHECKBOX.format(_CHECKBOX_NAME, escape(str(obj.pk)), label))


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
