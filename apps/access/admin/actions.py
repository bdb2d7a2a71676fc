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

import functools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import models
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

from apps.accounts.middleware import request_user
from apps.accounts.timezones import zone_for, zone_label
from apps.kit.admin_base import (
    ReadOnlyModelAdmin,
    StrictIdsMixin,
)

from .. import reach
from ..states import AccessError

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
    if type(label) in _PLAIN_TEXT:
        # The same few states on every row: each badge's HTML made once per process.
        return _badge(value, label)
    return _badge.__wrapped__(value, label)


# Text whose HTML cannot change between calls (a lazy label follows the active language).
_PLAIN_TEXT = (str, SafeString)


@functools.lru_cache(maxsize=256, typed=True)  # typed: "<b>" and SafeString("<b>") differ
def _badge(value: str, label: str) -> str:
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


class ParentViewInline(ReadOnlyModelAdmin, admin.TabularInline):
    """A read-only inline visible to whoever may view the parent (no separate perm needed)."""

    extra = 0
    can_delete = False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        parent = self.parent_model._meta
        return request.user.has_perm(f"{parent.app_label}.view_{parent.model_name}")

    def get_queryset(self, request: HttpRequest) -> models.QuerySet[Any]:
        # The one rule (``visibility``), like the parent's own page.
        return super().get_queryset(request).restrict(request_user(request))  # type: ignore[attr-defined]


class ReadOnlyAdmin(ReadOnlyModelAdmin, ConfirmedActionsMixin):
    """Records that only services change: viewable, never added, edited or deleted here;
    the confirmed actions call the services."""
