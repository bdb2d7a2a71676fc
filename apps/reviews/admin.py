"""Access reviews in the admin: auditors and superusers open, follow and close campaigns
and download their evidence packs; everyone in the admin sees the campaigns and items the
one rule (``restrict``) lets them see. Items are decided on ``/reviews/`` (reviewers need
not be admin users); here they are read-only. Nothing is deleted.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.http.response import HttpResponseBase
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from apps.access.models import Resource
from apps.access.states import AccessError
from apps.accounts.middleware import request_user
from apps.audit import export
from apps.audit.forms import InstantField
from apps.kit.admin_base import ReadOnlyModelAdmin

from . import evidence, services
from .models import Campaign, CampaignState, ReviewItem
from .names import deciders


class OpenCampaignForm(forms.Form):
    name = forms.CharField(max_length=200)
    due_at = InstantField(
        end=True, required=True, label="Due", help_text="A date (the end of that day, UTC)."
    )
    resources = forms.ModelMultipleChoiceField(
        queryset=Resource.objects.active().order_by("name"),
        required=False,
        help_text="None chosen: every active resource.",
        widget=forms.SelectMultiple(attrs={"size": 10}),
    )
    reviewer_group = forms.CharField(
        max_length=150,
        required=False,
        help_text="A group that reviews every item. Empty: each resource's approvers (the "
        "superusers for the approver groups themselves).",
    )
    long_grant_hours = forms.IntegerField(
        min_value=1,
        max_value=24 * 366,
        required=False,
        help_text="Grants longer than this since each resource's last review are items. "
        "Empty: ACCESS_REVIEW_LONG_GRANT_HOURS.",
    )


class StaffViewAdmin(ReadOnlyModelAdmin, admin.ModelAdmin):
    """Rows the admin shows and never edits: every staff member may look (the querysets
    are ``restrict``-ed), nobody adds, changes or deletes here."""

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_active and request.user.is_staff)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)


class CampaignAdmin(StaffViewAdmin):
    list_display = ("name", "state", "owner", "opened_at", "due_at", "progress", "overdue")
    list_filter = ("state",)
    search_fields = ("name",)
    ordering = ("-opened_at", "-pk")
    readonly_fields = (
        "name",
        "state",
        "owner",
        "all_resources",
        "reviewer_group",
        "long_grant_minutes",
        "period_start",
        "opened_at",
        "due_at",
        "closed_at",
        "closed_by",
        "progress",
        "overdue",
        "items_link",
    )
    fields = readonly_fields
    change_form_template = "admin/reviews/campaign/change_form.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Campaign]:
        return (
            Campaign.objects.restrict(request_user(request))
            .select_related("owner")
            .annotate(
                n_items=Count("items"),
                n_open=Count("items", filter=Q(items__decision="")),
            )
        )

    @admin.display(description="decided")
    def progress(self, obj: Campaign) -> str:
        total: int | None = getattr(obj, "n_items", None)
        undecided: int | None = getattr(obj, "n_open", None)
        if total is None or undecided is None:
            total, undecided = obj.items.count(), obj.items.filter(decision="").count()
        return f"{total - undecided} of {total}"

    @admin.display(description="overdue items")
    def overdue(self, obj: Campaign) -> str:
        undecided = getattr(obj, "n_open", None)
        if undecided is None:
            undecided = obj.items.filter(decision="").count()
        if obj.is_overdue(timezone.now()) and undecided:
            return f"{undecided} overdue"
        return "none"

    @admin.display(description="items")
    def items_link(self, obj: Campaign) -> str:
        url = reverse("admin:reviews_reviewitem_changelist") + f"?campaign__id__exact={obj.pk}"
        return format_html("<a href='{}'>every item of this review</a>", url)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return services.may_run(request.user)

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path("open/", wrap(self.open_view), name="reviews_campaign_open"),
            path(
                "<path:object_id>/close/",
                wrap(require_POST(self.close_view)),
                name="reviews_campaign_close",
            ),
            path(
                "<path:object_id>/evidence/",
                wrap(self.evidence_view),
                name="reviews_campaign_evidence",
            ),
            *super().get_urls(),
        ]

    def add_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return HttpResponseRedirect(reverse("admin:reviews_campaign_open"))

    def open_view(self, request: HttpRequest) -> HttpResponse:
        if not services.may_run(request.user):
            raise PermissionDenied
        form = OpenCampaignForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            hours = data["long_grant_hours"]
            try:
                campaign = services.open_campaign(
                    owner=request_user(request),
                    actor=request_user(request),
                    name=data["name"],
                    due_at=data["due_at"],
                    resources=list(data["resources"]) or None,
                    reviewer_group=data["reviewer_group"],
                    long_grant_minutes=hours * 60 if hours else None,
                )
            except AccessError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(
                    request, f"Opened '{campaign.name}' with {campaign.items.count()} items."
                )
                return HttpResponseRedirect(
                    reverse("admin:reviews_campaign_change", args=[campaign.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Open an access review",
            "form": form,
        }
        status = 400 if request.method == "POST" else 200
        return TemplateResponse(request, "admin/reviews/campaign/open.html", context, status=status)

    def _campaign(self, request: HttpRequest, object_id: str) -> Campaign:
        obj = self.get_object(request, unquote(object_id)) if object_id.isdigit() else None
        if obj is None:
            raise Http404("No such access review.")
        return obj

    def close_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        campaign = self._campaign(request, object_id)
        try:
            services.close_campaign(campaign, actor=request_user(request))
        except AccessError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"Closed '{campaign.name}'; its evidence pack is ready.")
        return HttpResponseRedirect(reverse("admin:reviews_campaign_change", args=[campaign.pk]))

    def evidence_view(self, request: HttpRequest, object_id: str) -> HttpResponseBase:
        """GET shows the confirmation; its POST (CSRF) streams the audited download."""
        if not services.may_run(request.user):
            raise PermissionDenied
        campaign = self._campaign(request, object_id)
        if campaign.state != CampaignState.CLOSED:
            messages.error(request, "Close the review first: the pack ends at its closing.")
            return HttpResponseRedirect(
                reverse("admin:reviews_campaign_change", args=[campaign.pk])
            )
        if request.method != "POST":
            context = {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "original": campaign,
                "title": f"Evidence pack of '{campaign.name}'",
            }
            return TemplateResponse(request, "admin/reviews/campaign/evidence.html", context)
        seg = evidence.segment(campaign)
        export.record_export(
            actor=request_user(request),
            fmt="evidence-pack",
            filters={"campaign": campaign.pk, "from_seq": seg.first_seq, "to_seq": seg.last_seq},
            via="admin",
        )
        response = StreamingHttpResponse(evidence.pack(campaign), content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="{evidence.pack_name(campaign)}"'
        response["Cache-Control"] = "no-store"
        return response

    def render_change_form(
        self, request: HttpRequest, context: dict[str, Any], *args: Any, **kwargs: Any
    ) -> Any:
        obj = context.get("original")
        context["may_run"] = services.may_run(request.user)
        context["is_open"] = obj is not None and obj.state == CampaignState.OPEN
        return super().render_change_form(request, context, *args, **kwargs)


class OverdueFilter(admin.SimpleListFilter):
    title = "overdue"
    parameter_name = "overdue"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Overdue (undecided past the due date)")]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        return queryset.overdue(timezone.now()) if self.value() == "yes" else queryset


class ItemChangeList(ChangeList):
    """Reads who decided each row of the page from the trail, in one query."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        names = deciders([item.pk for item in self.result_list])
        for item in self.result_list:
            item.decider_name = names.get(item.pk, "")


class ReviewItemAdmin(StaffViewAdmin):
    list_display = (
        "campaign",
        "resource_name",
        "kind",
        "summary",
        "reviewers",
        "decision",
        "decider",
        "decided_at",
        "outcome",
    )
    list_filter = (OverdueFilter, "decision", "kind", "campaign", "resource_slug")
    search_fields = ("summary", "resource_slug", "resource_name")
    list_select_related = ("campaign",)
    list_per_page = 100
    readonly_fields = (
        "campaign",
        "resource_slug",
        "resource_name",
        "kind",
        "summary",
        "subject",
        "reviewers",
        "decision",
        "comment",
        "decider",
        "decided_at",
        "outcome",
    )
    fields = readonly_fields

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return ItemChangeList

    def get_queryset(self, request: HttpRequest) -> QuerySet[ReviewItem]:
        return ReviewItem.objects.restrict(request_user(request))

    @admin.display(description="reviewers")
    def reviewers(self, obj: ReviewItem) -> str:
        return ", ".join(obj.reviewer_groups) or "superusers"

    @admin.display(description="decided by")
    def decider(self, obj: ReviewItem) -> str:
        if hasattr(obj, "decider_name"):
            return obj.decider_name
        return deciders([obj.pk]).get(obj.pk, "")


admin.site.register(Campaign, CampaignAdmin)
admin.site.register(ReviewItem, ReviewItemAdmin)
