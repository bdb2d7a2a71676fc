"""Grant admin: live, scheduled and ended access, with Revoke, Extend and Mark reviewed.

Grants are read-only; every change goes through a confirmed
action (``admin_actions``) that calls the service per grant.

The access reports live here too: "who had access to X between T1 and T2" and "who has
access now" (``reports``), as a page or a CSV download. Like the audit trail's exports,
they are for auditors (``audit.export_auditevent``) and superusers only, and every view
of one is audited (``audit.report_viewed``).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils import timezone
from django.utils.html import format_html

from apps.accounts.middleware import request_user
from apps.accounts.timezones import zone_for, zone_label
from apps.audit import export
from apps.audit.errors import AUDITOR, RoleRequired
from apps.audit.views import may_export
from apps.kit import choices
from apps.kit.admin_autocomplete import AutocompleteFilter, AutocompleteFiltersMixin

from .. import reach, reports, services
from ..briefs import grant_briefs
from ..forms import (
    ExtendForm,
    ReviewForm,
    RevokeForm,
)
from ..models import Grant, GrantExtension, Resource
from ..report_forms import AccessReportForm
from ..states import OPEN_GRANT_STATES
from .actions import (
    BADGE,
    ConfirmedAction,
    ParentViewInline,
    ReadOnlyAdmin,
    access_badge,
    badge,
    run_confirmed,
)


def _revoke(actor: Any, grant: Grant, data: dict[str, Any]) -> str:
    services.revoke_grant(grant, actor=actor, reason=data["reason"])
    return "revoked"


def _extend(actor: Any, grant: Grant, data: dict[str, Any]) -> str:
    services.extend_grant(
        grant,
        actor=actor,
        new_expires_at=data["new_end"],
        reason=data["reason"],
        override=data["override"],
    )
    return "extended"


def _review(actor: Any, grant: Grant, data: dict[str, Any]) -> str:
    services.mark_reviewed(grant, reviewer=actor, note=data["note"])
    return "marked reviewed"


def _is_open(grant: Grant) -> bool:
    return grant.state in OPEN_GRANT_STATES


def _needs_review(grant: Grant) -> bool:
    return grant.is_break_glass and grant.reviewed_at is None


REVOKE = ConfirmedAction(
    name="revoke_selected",
    slug="revoke",
    title="Revoke grants",
    button="Revoke",
    permission="revoke",
    form_class=RevokeForm,
    apply=_revoke,
    applicable=_is_open,
    danger=True,
)
EXTEND = ConfirmedAction(
    name="extend_selected",
    slug="extend",
    title="Extend grants",
    button="Extend",
    permission="extend",
    form_class=ExtendForm,
    apply=_extend,
    applicable=_is_open,
    form_kwargs=lambda request, objects: {"zone": zone_for(request)},
)
REVIEW = ConfirmedAction(
    name="mark_reviewed_selected",
    slug="review",
    title="Mark break-glass grants reviewed",
    button="Mark reviewed",
    permission="review",
    form_class=ReviewForm,
    apply=_review,
    applicable=_needs_review,
    context=lambda request, grants: {
        "briefs": grant_briefs(grants, zone=zone_for(request), now=timezone.now())
    },
)


def may_see_reports(request: HttpRequest) -> bool:
    """Whoever may read the audit trail in the admin and export it: auditors, superusers."""
    user = request.user
    return user.has_perm("audit.view_auditevent") and may_export(user)


class NeedsReviewFilter(admin.SimpleListFilter):
    title = "needs review"
    parameter_name = "needs_review"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Break-glass, not yet reviewed"), ("no", "Reviewed or not break-glass")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.needing_review()  # type: ignore[attr-defined]
        if self.value() == "no":
            return queryset.exclude(Q(is_break_glass=True, reviewed_at__isnull=True))
        return queryset


class GrantExtensionInline(ParentViewInline):
    model = GrantExtension
    fk_name = "grant"
    fields = readonly_fields = (
        "created_at",
        "extended_by",
        "old_expires_at",
        "new_expires_at",
        "reason",
        "over_maximum",
    )


class RemovalOverdueFilter(admin.SimpleListFilter):
    title = "revocation enforced"
    parameter_name = "removal"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("overdue", "Revocation not yet enforced")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Grant]) -> QuerySet[Grant]:
        if self.value() == "overdue":
            return queryset.removal_overdue(timezone.now())  # type: ignore[attr-defined]
        return queryset


@admin.register(Grant)
class GrantAdmin(AutocompleteFiltersMixin, ReadOnlyAdmin):
    list_display = (
        "id",
        "email",
        "resource",
        "level",
        "state_badge",
        "flags",
        "not_before",
        "expires_at",
        "access_now",
        "sync_badge",
        "live_at",
        "enforced_at",
    )
    list_display_links = ("id", "email")
    list_filter = (
        "state",
        "sync_status",
        ("resource", AutocompleteFilter),
        "is_break_glass",
        NeedsReviewFilter,
        RemovalOverdueFilter,
        # By date, in place of a date hierarchy (which read every visible grant twice).
        "not_before",
    )
    search_fields = ("email", "user__username", "resource__slug", "resource__name")
    list_select_related = ("resource", "level", "revoked_by")
    list_only = (
        "email",
        "user",
        "resource",
        "resource__name",
        "resource__cluster",
        "state",
        "level",
        "level__name",
        "is_break_glass",
        "reviewed_at",
        "not_before",
        "expires_at",
        "schedule",
        "revoked_at",
        "revoked_by",
        "revoked_by__email",
        "revoked_by__username",
        "revoke_reason",
        "sync_status",
        "sync_error",
        "live_at",
        "enforced_at",
    )
    # 50 rows, not 100: rendering the rows (11-12 columns each) is most of what is left
    # of the page's cost once its queries are bounded; the pages after it are one click on.
    list_per_page = 50
    show_full_result_count = False  # one COUNT(*) per page view, not two
    ordering = ("-not_before",)
    change_list_template = "admin/access/grant/change_list.html"
    actions = ("revoke_selected", "extend_selected", "mark_reviewed_selected")
    confirmed_actions = (REVOKE, EXTEND, REVIEW)
    inlines = (GrantExtensionInline,)
    fieldsets = (
        (
            "Grant",
            {
                "fields": (
                    "user",
                    "email",
                    "resource",
                    "request",
                    "level",
                    "criteria",
                    "schedule",
                    "state",
                    "access_answer",
                    "not_before",
                    "expires_at",
                    "created_at",
                )
            },
        ),
        ("Revocation", {"fields": ("revoked_by", "revoked_at", "revoke_reason")}),
        (
            "Break-glass",
            {"fields": ("is_break_glass", "reviewed_by", "reviewed_at", "review_note")},
        ),
        (
            "Pomerium",
            {
                "fields": (
                    "sync_status",
                    "sync_error",
                    "live_at",
                    "enforced_at",
                    "removed_at",
                    "reminder_sent_at",
                )
            },
        ),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Grant]:
        # Least privilege: the one rule (``visibility``), as on every page and in the API.
        return super().get_queryset(request).restrict(request_user(request))  # type: ignore[attr-defined]

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("access.revoke_grant")

    def has_extend_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("access.extend_grant")

    def has_review_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("access.review_grant")

    @admin.action(description="Revoke selected grants…", permissions=["revoke"])
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[Grant]) -> Any:
        return run_confirmed(self, request, queryset, REVOKE)

    @admin.action(description="Extend selected grants…", permissions=["extend"])
    def extend_selected(self, request: HttpRequest, queryset: QuerySet[Grant]) -> Any:
        return run_confirmed(self, request, queryset, EXTEND)

    @admin.action(description="Mark selected break-glass grants reviewed…", permissions=["review"])
    def mark_reviewed_selected(self, request: HttpRequest, queryset: QuerySet[Grant]) -> Any:
        return run_confirmed(self, request, queryset, REVIEW)

    @admin.display(description="state", ordering="state")
    def state_badge(self, obj: Grant) -> str:
        return badge(obj.state, choices.display(obj, "state"))

    @admin.display(description="sync", ordering="sync_status")
    def sync_badge(self, obj: Grant) -> str:
        if obj.removal_is_overdue(timezone.now()):
            # The user may still get in: say it louder than any other state.
            return format_html(BADGE, "#b42318", "#fff", "REVOCATION NOT YET ENFORCED")
        return badge(obj.sync_status, choices.display(obj, "sync_status"))

    @admin.display(description="flags", ordering="is_break_glass")
    def flags(self, obj: Grant) -> str:
        if not obj.is_break_glass:
            return ""
        if obj.reviewed_at is None:
            return format_html(BADGE, "#b42318", "#fff", "BREAK-GLASS · needs review")
        return format_html(BADGE, "#fde2e1", "#b42318", "break-glass · reviewed")

    @admin.display(description="can they get in now?", ordering="expires_at")
    def access_now(self, obj: Grant) -> str:
        """The one answer (``reach.access``), in the reader's zone; its detail on hover."""
        return access_badge(self._answer(obj))

    @admin.display(description="can they get in now?")
    def access_answer(self, obj: Grant) -> str:
        """The grant's page: the answer with its detail in words."""
        answer = self._answer(obj)
        return format_html("{} {}", access_badge(answer), answer.detail or "")

    @staticmethod
    def _answer(obj: Grant) -> reach.Access:
        return reach.access(obj, now=timezone.now(), zone=timezone.get_current_timezone())

    # --- Access reports ----------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path(
                "access-report/",
                wrap(self.access_report_view),
                name="access_grant_access_report",
            ),
            path("access-now/", wrap(self.access_now_view), name="access_grant_access_now"),
            *super().get_urls(),
        ]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        context = {"can_report": may_see_reports(request), **(extra_context or {})}
        return super().changelist_view(request, extra_context=context)

    def access_report_view(self, request: HttpRequest) -> HttpResponse:
        return self._access_report(request, between=True)

    def access_now_view(self, request: HttpRequest) -> HttpResponse:
        return self._access_report(request, between=False)

    def _access_report(self, request: HttpRequest, *, between: bool) -> HttpResponse:
        if not may_see_reports(request):
            raise RoleRequired(AUDITOR, "Reading the access reports")
        if request.method not in ("GET", "POST"):
            return HttpResponseNotAllowed(["GET", "POST"])
        # A GET only shows the form: running a report (which is audited in the viewer's
        # name) or downloading it takes the form's POST, with its CSRF token.
        submitted = request.method == "POST"
        form = AccessReportForm(
            request.POST if submitted else None,
            between=between,
            resources=Resource.objects.restrict(request_user(request)),
        )
        rows: list[reports.AccessRow] | None = None
        status = 200
        if submitted and form.is_valid():
            resource = form.cleaned_data["resource"]
            fmt = "csv" if request.POST.get("download") == "csv" else "html"
            report = reports.run_report(
                request.user,
                resource,
                start=form.cleaned_data.get("start") if between else None,
                end=form.cleaned_data.get("end") if between else None,
                via="admin",
                fmt=fmt,
            )
            rows, start, end = report.rows, report.start, report.end
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
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Who had access" if between else "Who has access now",
            "form": form,
            "rows": rows,
            "between": between,
            "columns": reports.REPORT_COLUMNS,
            "zone_name": zone_label(timezone.get_current_timezone()),
        }
        # In the reader's zone, like every admin page; the CSV download stays UTC.
        return TemplateResponse(
            request, "admin/access/grant/access_report.html", context, status=status
        )
