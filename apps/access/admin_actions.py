"""Admin actions that ask before they act, then call one service per object.

Approving, rejecting, revoking, extending and reviewing all share one shape: the reviewer
selects objects (or presses a button on one object's page), an intermediate page asks for
the reason/duration/end, and on confirmation each object goes through its service
separately, so one refusal ("you cannot decide your own request") skips that object only.
The result is reported per object: "3 approved, 1 skipped: #12 You cannot decide your own
request."

``ConfirmedActionsMixin`` adds the per-object URLs (``<id>/approve/`` ...) that reuse the
same intermediate page; they accept POST only, behind the admin's CSRF protection.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import Exists, OuterRef
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
)
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext

from apps.accounts.middleware import request_user
from apps.accounts.timezones import zone_for, zone_label
from jitportal.admin_ids import is_valid_id
from jitportal.admin_lists import FastListAdmin, FastResultsChangeList

from . import reach
from .states import AccessError

if TYPE_CHECKING:
    from apps.accounts.models import User

# Above this many objects the page would be unwieldy and the loop long; filter first.
MAX_BATCH = 500
CONFIRM = "apply"


@dataclass(frozen=True)
class ConfirmedAction:
    """One confirmed action: its form, its permission, and the service call per object."""

    name: str  # the admin action's function name, e.g. "approve_selected"
    slug: str  # the per-object URL part, e.g. "approve"
    title: str  # heading of the intermediate page
    button: str  # label of the confirm button (and of the change-page button)
    permission: str  # "decide" -> ModelAdmin.has_decide_permission
    form_class: type[forms.Form]
    # (actor, object, cleaned form data) -> outcome word ("approved"); raises AccessError.
    apply: Callable[[User, Any, dict[str, Any]], str]
    # Whether the change page offers the button for this object.
    applicable: Callable[[Any], bool]
    danger: bool = False
    # (request, selected objects) -> keyword arguments of the form (e.g. the levels offered).
    form_kwargs: Callable[[HttpRequest, list[Any]], dict[str, Any]] = field(
        default=lambda request, objects: {}
    )
    # (request, selected objects) -> more for the page (e.g. what the approver reads first).
    context: Callable[[HttpRequest, list[Any]], dict[str, Any]] = field(
        default=lambda request, objects: {}
    )
    # What the intermediate page reads of the selection beyond the rows (e.g. a prefetch).
    rows: Callable[[models.QuerySet[Any]], models.QuerySet[Any]] = field(default=lambda qs: qs)


@dataclass
class Outcome:
    done: Counter[str] = field(default_factory=Counter)
    skipped: list[str] = field(default_factory=list)

    def message(self) -> str:
        parts = [f"{n} {word}" for word, n in self.done.items()]
        if self.skipped:
            parts.append(f"{len(self.skipped)} skipped: " + "; ".join(self.skipped))
        return ", ".join(parts) or "Nothing was changed."

    def level(self) -> int:
        if not self.skipped:
            return messages.SUCCESS
        return messages.WARNING if self.done else messages.ERROR


def run_confirmed(
    modeladmin: admin.ModelAdmin[Any],
    request: HttpRequest,
    queryset: models.QuerySet[Any],
    action: ConfirmedAction,
    *,
    single: models.Model | None = None,
) -> HttpResponse | None:
    """Show the intermediate page, or on confirmation apply ``action`` to each object.

    Returns None once applied (the admin then redirects back to where it came from) and a
    page while the form is unconfirmed or invalid. Nothing is changed before confirmation.
    """
    objects = list(action.rows(queryset).order_by("pk")[: MAX_BATCH + 1])
    if len(objects) > MAX_BATCH:
        modeladmin.message_user(
            request,
            f"Select at most {MAX_BATCH} at a time; nothing was changed.",
            messages.ERROR,
        )
        return None
    kwargs = action.form_kwargs(request, objects)
    if CONFIRM in request.POST:
        form = action.form_class(request.POST, **kwargs)
        if form.is_valid():
            actor = request_user(request)
            outcome = Outcome()
            for obj in objects:
                try:
                    outcome.done[action.apply(actor, obj, form.cleaned_data)] += 1
                except AccessError as exc:
                    outcome.skipped.append(f"#{obj.pk} {exc}")
            modeladmin.message_user(request, outcome.message(), outcome.level())
            return None
    else:
        form = action.form_class(**kwargs)
    opts = modeladmin.model._meta
    zone = zone_for(request)
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": action.title,
        "opts": opts,
        "action": action,
        "form": form,
        "objects": objects,
        "single": single,
        "confirm_name": CONFIRM,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "zone_name": zone_label(zone),
        "now": timezone.now(),
        "media": modeladmin.media,
        **action.context(request, objects),
    }
    # Rendered in the person's zone, like every page (``TimeZoneMiddleware``).
    return TemplateResponse(
        request,
        [
            f"admin/{opts.app_label}/{opts.model_name}/action_confirmation.html",
            "admin/access/action_confirmation.html",
        ],
        context,
    )


class ColumnsChangeList(FastResultsChangeList):
    """A changelist that loads only its model admin's ``list_only`` columns for the rows,
    and renders them per column (``jitportal.admin_lists``).

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
    ``jitportal.admin_ids.AdminSelectionMiddleware``).

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


class ConfirmedActionsMixin(StrictIdsMixin):
    """Per-object buttons for the model's confirmed actions, on its change page."""

    confirmed_actions: tuple[ConfirmedAction, ...] = ()
    change_form_template = "admin/access/change_form_with_actions.html"

    def has_action_permission(self, request: HttpRequest, action: ConfirmedAction) -> bool:
        check = getattr(self, f"has_{action.permission}_permission")
        return bool(check(request))

    def get_urls(self) -> list[URLPattern]:
        info = self.opts.app_label, self.opts.model_name
        custom = [
            path(
                f"<path:object_id>/{action.slug}/",
                self.admin_site.admin_view(self._object_view(action)),
                name=f"{info[0]}_{info[1]}_{action.slug}",
            )
            for action in self.confirmed_actions
        ]
        # Before the defaults: their "<path:object_id>/" catch-all would swallow these.
        return custom + super().get_urls()

    def _object_view(self, action: ConfirmedAction) -> Callable[..., HttpResponse]:
        def view(request: HttpRequest, object_id: str) -> HttpResponse:
            # A state change never happens on GET; the change page's button POSTs here.
            if request.method != "POST":
                return HttpResponseNotAllowed(["POST"])
            if not self.has_action_permission(request, action):
                raise PermissionDenied
            obj = self.get_object(request, unquote(object_id))
            if obj is None:
                raise Http404(f"No {self.opts.verbose_name} with that id.")
            queryset = self.get_queryset(request).filter(pk=obj.pk)
            response = run_confirmed(self, request, queryset, action, single=obj)
            if response is not None:
                return response
            info = self.opts.app_label, self.opts.model_name
            return redirect(reverse(f"admin:{info[0]}_{info[1]}_change", args=[obj.pk]))

        view.__name__ = f"{action.slug}_view"
        return view

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        obj = self.get_object(request, unquote(object_id))
        buttons = []
        if obj is not None:
            info = self.opts.app_label, self.opts.model_name
            buttons = [
                {
                    "label": action.button,
                    "url": reverse(f"admin:{info[0]}_{info[1]}_{action.slug}", args=[obj.pk]),
                    "danger": action.danger,
                }
                for action in self.confirmed_actions
                if action.applicable(obj) and self.has_action_permission(request, action)
            ]
        extra = {**(extra_context or {}), "object_action_buttons": buttons}
        return super().change_view(request, object_id, form_url, extra)


# --- Shared shapes of the access admin ------------------------------------------------------

BADGE = (
    '<span style="display:inline-block;padding:0 .45em;border-radius:9px;'
    'background:{};color:{};font-weight:600">{}</span>'
)
STATE_COLOURS = {
    "pending": ("#fff4d6", "#9a6700"),
    "scheduled": ("#fff4d6", "#9a6700"),
    # Green means "Pomerium lets them in now" and nothing else (``access_badge``).
    "approved": ("#eef2ff", "#3451b2"),
    "active": ("#eef2ff", "#3451b2"),
    "live": ("#eef2ff", "#3451b2"),
    "rejected": ("#fde2e1", "#b42318"),
    "revoked": ("#fde2e1", "#b42318"),
    "error": ("#fde2e1", "#b42318"),
}


def badge(value: str, label: str) -> str:
    bg, fg = STATE_COLOURS.get(value, ("#eceef3", "#5d6677"))
    return format_html(BADGE, bg, fg, label)


ACCESS_COLOURS = {
    reach.ALLOWED: ("#dcf5e3", "#1a7f37"),
    reach.OPENS: ("#eef2ff", "#3451b2"),
    reach.WAITING: ("#fff4d6", "#9a6700"),
    reach.ERROR: ("#fde2e1", "#b42318"),
}


def access_badge(answer: reach.Access) -> str:
    """The one answer to "can they get in now?" (``reach.access``), the detail on hover."""
    bg, fg = ACCESS_COLOURS.get(answer.state, ("#eceef3", "#5d6677"))
    return format_html(
        '<span title="{}" style="display:inline-block;padding:0 .45em;border-radius:9px;'
        'background:{};color:{};font-weight:600">{}</span>',
        answer.detail or "",
        bg,
        fg,
        answer.label,
    )


def without_delete_selected(actions: dict[str, Any]) -> dict[str, Any]:
    # Deleting would bypass the services and erase history; archive or revoke instead.
    actions.pop("delete_selected", None)
    return actions


class ParentViewInline(admin.TabularInline):
    """A read-only inline visible to whoever may view the parent (no separate perm needed)."""

    extra = 0
    can_delete = False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        parent = self.parent_model._meta
        return request.user.has_perm(f"{parent.app_label}.view_{parent.model_name}")

    def get_queryset(self, request: HttpRequest) -> models.QuerySet[Any]:
        # The one rule (``visibility``), like the parent's own page.
        return super().get_queryset(request).restrict(request_user(request))  # type: ignore[attr-defined]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyAdmin(ConfirmedActionsMixin):
    """Records that only services change: viewable, never added, edited or deleted here."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        return without_delete_selected(super().get_actions(request))
