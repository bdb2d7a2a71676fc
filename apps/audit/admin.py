"""The audit trail in the admin: view-only, filterable, exportable, with access reports.

Nobody adds, changes or deletes entries here (the model and, on PostgreSQL, the database
refuse anyway). The changelist's Export links stream exactly what the changelist shows
(its filters and search), in chain order; the report views answer "who had access to X
between T1 and T2" and "who has access now". Exports and reports are audited and are
for auditors (``audit.export_auditevent``) and superusers only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ERROR_FLAG, PAGE_VAR
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone

from . import export, reports
from .forms import AccessReportForm
from .models import AuditEvent
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


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("seq", "created_at", "actor_label", "action", "target_repr", "resource_slug")
    list_display_links = ("seq",)
    list_filter = ("action", "created_at", "resource_slug")
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

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path("export/", wrap(self.export_view), name="audit_auditevent_export"),
            path("access-report/", wrap(self.access_report_view), name="audit_auditevent_access"),
            path("access-now/", wrap(self.access_now_view), name="audit_auditevent_access_now"),
            *super().get_urls(),
        ]

    def _require_export(self, request: HttpRequest) -> None:
        if not (self.has_view_permission(request) and may_export(request.user)):
            raise PermissionDenied

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
        """Stream the changelist's current queryset (filters + search) in chain order."""
        self._require_export(request)
        params = request.GET.copy()
        fmt = params.pop(_FORMAT_PARAM, ["csv"])[-1]
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

    def access_report_view(self, request: HttpRequest) -> HttpResponse:
        return self._access_report(request, between=True)

    def access_now_view(self, request: HttpRequest) -> HttpResponse:
        return self._access_report(request, between=False)

    def _access_report(self, request: HttpRequest, *, between: bool) -> HttpResponse:
        self._require_export(request)
        submitted = bool(request.GET) or not between
        form = AccessReportForm(request.GET if submitted else None, between=between)
        rows: list[reports.AccessRow] | None = None
        status = 200
        if submitted and form.is_valid():
            resource = form.cleaned_data["resource"]
            start = form.cleaned_data.get("start")
            end = form.cleaned_data.get("end")
            if between:
                assert start is not None and end is not None  # required fields
                rows = reports.who_had_access(resource, start, end)
                name = "who_had_access"
            else:
                now = timezone.now()
                rows = reports.who_has_access_now(resource, now=now)
                name, start, end = "who_has_access_now", now, None
            fmt = "csv" if request.GET.get("download") == "csv" else "html"
            reports.record_report(
                actor=request.user,
                report=name,
                resource=resource,
                start=start,
                end=end,
                rows=len(rows),
                via="admin",
                fmt=fmt,
            )
            if fmt == "csv":
                response = HttpResponse(reports.to_csv(rows), content_type=export.FORMATS["csv"])
                slug = resource.slug if resource else "all"
                if between:
                    file_name = export.filename("csv", start, end, prefix=f"access_{slug}")
                else:
                    file_name = f"access_{slug}_now_{start:%Y-%m-%dT%H%M%SZ}.csv"
                response["Content-Disposition"] = f'attachment; filename="{file_name}"'
                response["Cache-Control"] = "no-store"
                return response
        elif submitted:
            status = 400
        query = request.GET.copy()
        query["download"] = "csv"
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Who had access" if between else "Who has access now",
            "form": form,
            "rows": rows,
            "between": between,
            "csv_query": query.urlencode(),
            "columns": reports.REPORT_COLUMNS,
        }
        return TemplateResponse(
            request, "admin/audit/auditevent/access_report.html", context, status=status
        )
