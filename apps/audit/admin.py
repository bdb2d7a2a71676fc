"""The audit trail in the admin: view-only, filterable, exportable.

Nobody adds, changes or deletes entries here (the model and, on PostgreSQL, the database
refuse anyway). The changelist's Export links stream exactly what the changelist shows
(its filters and search), in chain order. Exports are audited and are for auditors
(``audit.export_auditevent``) and superusers only. The changelist also links to the
access reports, which live with the grants' admin.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ERROR_FLAG, PAGE_VAR, ChangeList
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone

from apps.kit.admin_base import ColumnsChangeList, ReadOnlyModelAdmin

from . import actions, export
from .errors import AUDITOR, RoleRequired
from .models import AuditEvent, StreamDestination
from .stream import config as stream_config
from .stream import sender as stream_sender
from .stream import status as stream_status
from .views import download, may_export

_FORMAT_PARAM = "format"


def _bound(params: Any, key: str, *, end: bool) -> datetime | None:
    value = params.get(key)
    if not value:
        return None
    try:
        return export.parse_bound(value, end=end)
    except ValueError:
        return None


# The columns the changelist shows; details, hashes and the request metadata stay unread.
LIST_COLUMNS = ("seq", "created_at", "actor_label", "action", "target_repr", "resource_slug")


class ActionFilter(admin.SimpleListFilter):
    """Filter by action, with the registered actions as choices (``apps.audit.actions``):
    no query over the trail to find which actions occur."""

    title = "action"
    parameter_name = "action__exact"  # the URL Django's field filter used: links keep working

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return actions.choices()

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        value = self.value()
        return queryset.filter(action=value) if value else queryset


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyModelAdmin, admin.ModelAdmin):
    # Nobody adds, changes or deletes entries in the admin: the services own them.
    list_display = LIST_COLUMNS
    # Only these are read for the rows shown (``ColumnsChangeList``); filters, counts and
    # the export keep the full queryset (``export_view`` reads ``changelist.queryset``).
    list_only = LIST_COLUMNS
    list_display_links = ("seq",)
    list_filter = (ActionFilter, "created_at", "resource_slug")
    search_fields = ("actor_label", "target_repr", "request_id")
    ordering = ("-seq",)
    list_per_page = 100
    # COUNT(*) over millions of rows on every page view is not worth the exact total.
    show_full_result_count = False
    fields = (
        ("seq", "created_at"),
        ("actor", "actor_label"),
        "action",
        ("target_type", "target_id"),
        "target_repr",
        "resource_slug",
        "request_id",
        ("ip", "user_agent"),
        ("assertion_jti", "assertion_sid"),
        "details",
        "prev_hash",
        "hash",
    )
    readonly_fields = tuple(
        name for item in fields for name in (item if isinstance(item, tuple) else (item,))
    )

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return ColumnsChangeList

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path("export/", wrap(self.export_view), name="audit_auditevent_export"),
            *super().get_urls(),
        ]

    def _require_export(self, request: HttpRequest) -> None:
        if not (self.has_view_permission(request) and may_export(request.user)):
            raise RoleRequired(AUDITOR, "Exporting the audit trail")

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        params = request.GET.copy()
        for key in (PAGE_VAR, ERROR_FLAG):
            params.pop(key, None)
        export_url = reverse("admin:audit_auditevent_export")
        links = {}
        for fmt in export.FORMATS:
            query = params.copy()
            query[_FORMAT_PARAM] = fmt
            links[fmt] = f"{export_url}?{query.urlencode()}"
        context = {
            "can_export": may_export(request.user),
            "export_links": links,
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra_context=context)

    def export_view(self, request: HttpRequest) -> HttpResponseBase:
        """Stream the changelist's current queryset (filters + search) in chain order.

        The filters ride in the query string; a GET only shows a confirmation form, whose
        POST (with the CSRF token) starts the audited download.
        """
        self._require_export(request)
        params = request.GET.copy()
        fmt = params.pop(_FORMAT_PARAM, ["csv"])[-1]
        if request.method != "POST":
            if request.method not in ("GET", "HEAD"):
                return HttpResponseNotAllowed(["GET", "POST"])
            context = {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": "Export the audit trail",
                "fmt": fmt if fmt in export.FORMATS else "csv",
                "formats": list(export.FORMATS),
                "filters": [(k, v) for k, v in params.lists() if k not in (PAGE_VAR, ERROR_FLAG)],
                "action_url": request.get_full_path(),
            }
            return TemplateResponse(request, "admin/audit/auditevent/export_confirm.html", context)
        fmt = request.POST.get(_FORMAT_PARAM, fmt)
        changelist_url = reverse("admin:audit_auditevent_changelist")
        if fmt not in export.FORMATS:
            messages.error(request, f"Unknown export format {fmt!r}.")
            return HttpResponseRedirect(changelist_url)
        request.GET = params  # type: ignore[assignment]  # the ChangeList reads its filters here
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            messages.error(request, "Those filters are not valid; nothing was exported.")
            return HttpResponseRedirect(changelist_url)
        filters = {
            key: values[0] if len(values) == 1 else values
            for key, values in params.lists()
            if key not in (PAGE_VAR, ERROR_FLAG)
        }
        now = timezone.now()
        event = export.record_export(actor=request.user, fmt=fmt, filters=filters, via="admin")
        name = export.filename(
            fmt,
            _bound(params, "created_at__gte", end=False),
            _bound(params, "created_at__lt", end=False),
            now=now,
        )
        return download(changelist.queryset, fmt=fmt, name=name, upto_seq=event.seq)


@admin.register(StreamDestination)
class StreamDestinationAdmin(ReadOnlyModelAdmin, admin.ModelAdmin):
    # The sender owns these rows; nobody adds, changes or deletes them in the admin.
    """One row per audit stream destination: cursor, lag, last success, last error.

    Read-only for auditors and superusers; superusers may clear a destination's backoff
    ("Send now"), which asks a worker to send at once. The cursor moves only through the
    sender (on acknowledgements) and ``stream_audit --move-cursor`` (audited).
    """

    list_display = (
        "name",
        "state",
        "cursor",
        "lag_entries",
        "lag",
        "last_success_at",
        "error",
    )
    list_display_links = ("name",)
    ordering = ("name",)
    actions = ("send_now",)
    fields = (
        "name",
        "state",
        "cursor",
        "lag_entries",
        "lag",
        "acked_at",
        "last_success_at",
        "last_attempt_at",
        "last_error",
        "last_error_at",
        "failures",
        "failing_since",
        "next_attempt_at",
        "alerted_at",
        "created_at",
    )
    readonly_fields = fields

    def _status(self, obj: StreamDestination) -> stream_status.DestinationStatus:
        """Worked out once per row shown (several columns read it)."""
        found: stream_status.DestinationStatus | None = getattr(obj, "_stream_status", None)
        if found is None:
            configured = any(d.name == obj.name for d in stream_config.destinations())
            found = stream_status.of(
                obj, head=stream_sender.head_seq(), now=timezone.now(), configured=configured
            )
            obj._stream_status = found  # type: ignore[attr-defined]
        return found

    @admin.display(description="state")
    def state(self, obj: StreamDestination) -> str:
        return self._status(obj).state

    @admin.display(description="lag (entries)")
    def lag_entries(self, obj: StreamDestination) -> int:
        return self._status(obj).lag_entries

    @admin.display(description="lag (oldest unsent)")
    def lag(self, obj: StreamDestination) -> str:
        seconds = self._status(obj).lag_seconds
        return f"{seconds:.0f} s" if seconds else "none"

    @admin.display(description="last error")
    def error(self, obj: StreamDestination) -> str:
        if not obj.last_error:
            return "none"
        when = obj.last_error_at.isoformat(timespec="seconds") if obj.last_error_at else ""
        return f"{when} {obj.last_error}"

    def get_queryset(self, request: HttpRequest) -> Any:
        stream_status.statuses()  # the configured destinations have their rows
        return super().get_queryset(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return may_export(request.user)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return may_export(request.user)

    def has_send_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    @admin.action(description="Send now (clear the backoff)", permissions=["send"])
    def send_now(self, request: HttpRequest, queryset: Any) -> None:
        configured = {d.name for d in stream_config.destinations()}
        asked = 0
        for obj in queryset:
            if obj.name in configured:
                stream_sender.retry_now(obj.name)
                asked += stream_sender.enqueue(obj.name)
        self.message_user(request, f"{asked} destination(s) asked to send now.", messages.SUCCESS)
