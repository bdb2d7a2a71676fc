"""The Django admin is the approval UI, so it is locked down.

Requests and grants are read-only here (no add, no edit, no delete): they change only
through the confirmed actions (``admin_actions``), each of which calls a service per object
and is guarded by a custom permission. Resources are configuration: editable by those
with the change permission, never deleted (archive instead), and every save is audited and
re-syncs the resource's Zero policy in the same transaction (``resources.save_resource``).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.db.models import Prefetch, QuerySet
from django.forms import ModelForm, Textarea
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.text import Truncator
from django.utils.timesince import timesince

from apps.accounts.middleware import request_user
from apps.accounts.timezones import abbreviation, zone_for
from apps.kit.admin_base import BoundedRelatedOnlyFilter, StrictIdsMixin, without_delete_selected
from apps.ppl import criteria_errors, validate_ppl

from . import briefs, clusters, inbox, services, stages, targets
from .admin_actions import (
    ConfirmedAction,
    ParentViewInline,
    ReadOnlyAdmin,
    badge,
    run_confirmed,
)
from .durations import duration_label
from .forms import (
    ApproveForm,
    RejectForm,
)
from .levels import level_summary
from .models import AccessLevel, AccessRequest, Approval, Resource, pending_first
from .queries import approval_count
from .resources import save_levels, save_resource
from .states import PolicyViolation, RequestKind, RequestState

# --- Resources -----------------------------------------------------------------------------


def masked_webhook(url: str) -> str:
    """What the admin shows of a Slack webhook: that one is set, and its host. Never the path."""
    if not url:
        return "not set"
    host = urlsplit(url).hostname or "?"
    return f"set ({host}/…)"


class ClusterChoiceField(forms.ChoiceField):
    """The cluster select; an empty value is "unchanged", not a change to nothing."""

    def has_changed(self, initial: Any, data: Any) -> bool:
        return bool(data) and str(data) != str(initial)


class ResourceAdminForm(ModelForm):
    """The Slack webhook URL is a credential: write-only here (replace or clear, never shown)."""

    slack_webhook_replace = forms.URLField(
        required=False,
        assume_scheme="https",
        label="Replace Slack webhook",
        help_text="Paste a new incoming-webhook URL to replace the current one; leave empty "
        "to keep it. The stored URL is never shown.",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
    )
    slack_webhook_clear = forms.BooleanField(
        required=False, label="Clear Slack webhook", help_text="Stop posting to Slack."
    )

    class Meta:
        model = Resource
        # Every editable setting except the webhook URL, which only the two inputs set.
        fields = (
            "name",
            "slug",
            "description",
            "is_active",
            "cluster",
            "zero_policy_name",
            "base_ppl",
            "routes",
            "requester_groups",
            "approver_groups",
            "approvals_required",
            "approval_stages",
            "auto_approve_rules",
            "duration_choices",
            "max_duration_minutes",
            "allow_scheduled",
            "max_schedule_ahead_days",
            "justification_required",
            "justification_min_length",
            "ticket_required",
            "break_glass_groups",
            "break_glass_max_minutes",
            "schedule",
            "slack_channel",
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "cluster" in self.fields:
            # A choice of the configured clusters; a stored name that is no longer configured
            # is shown as such, so saving asks for a real one (the model's clean refuses it).
            names = clusters.names()
            current = self.instance.cluster if self.instance.pk else None
            choices = [(name, name) for name in names]
            if current and current not in names:
                choices.append((current, f"{current} (not configured)"))
            self.fields["cluster"] = ClusterChoiceField(
                choices=choices,
                required=False,
                initial=self.instance.cluster or clusters.default_cluster_name(),
                help_text=Resource._meta.get_field("cluster").help_text,
            )

    def clean_cluster(self) -> str:
        # Nothing chosen (a script posting the other fields only) keeps the current cluster.
        chosen = self.cleaned_data.get("cluster")
        return str(chosen or self.instance.cluster or clusters.default_cluster_name())

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        replacement = data.get("slack_webhook_replace")
        if replacement and data.get("slack_webhook_clear"):
            self.add_error("slack_webhook_clear", "Replace or clear the webhook, not both.")
        elif replacement and urlsplit(replacement).scheme != "https":
            self.add_error("slack_webhook_replace", "A Slack webhook URL starts with https://.")
        return data

    def webhook_changed(self) -> bool:
        return bool(
            self.cleaned_data.get("slack_webhook_replace")
            or (self.cleaned_data.get("slack_webhook_clear") and self.instance.slack_webhook_url)
        )

    def apply_webhook(self, resource: Resource) -> None:
        if self.cleaned_data.get("slack_webhook_clear"):
            resource.slack_webhook_url = ""
        elif self.cleaned_data.get("slack_webhook_replace"):
            resource.slack_webhook_url = self.cleaned_data["slack_webhook_replace"]


class AccessLevelInline(admin.TabularInline):
    """The resource's access levels. Grants keep the criteria they were approved with, so
    editing a level changes future grants only; every save is audited on the resource."""

    model = AccessLevel
    extra = 0
    fields = (
        "rank",
        "slug",
        "name",
        "criteria",
        "max_duration_minutes",
        "approvals_required",
        "approval_stages",
        "auto_approve_rules",
    )
    formfield_overrides = {
        models.JSONField: {
            "widget": Textarea(attrs={"rows": 2, "cols": 50, "style": "font-family:monospace"})
        },
    }

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A level in use is protected by the database; an unused one may go.
        return bool(request.user.is_superuser)

    def get_queryset(self, request: HttpRequest) -> QuerySet[AccessLevel]:
        return super().get_queryset(request).restrict(request_user(request))  # type: ignore[attr-defined]


@admin.register(Resource)
class ResourceAdmin(StrictIdsMixin):
    form = ResourceAdminForm
    inlines = (AccessLevelInline,)
    list_display = (
        "name",
        "slug",
        "is_active",
        "approvals_required",
        "cluster",
        "policy",
        "zero_sync",
        "updated_at",
    )
    list_select_related = ("zero",)
    list_only = (
        "name",
        "slug",
        "cluster",
        "is_active",
        "approvals_required",
        "zero_policy_name",
        "sync_generation",
        "updated_at",
        "zero__last_attempt_at",
        "zero__last_success_at",
        "zero__last_error",
        "zero__last_error_at",
        "zero__duplicate_policy_ids",
        "zero__pending_apply",
        "zero__pending_reason",
        "zero__synced_generation",
    )
    list_filter = (
        "is_active",
        "cluster",
        "allow_scheduled",
        "justification_required",
        "ticket_required",
        "approvals_required",
    )
    search_fields = ("name", "slug", "description", "zero_policy_name")
    show_full_result_count = False  # one COUNT(*) per page view, not two
    readonly_fields = (
        "expiry",
        "zero_status",
        "ppl_problems",
        "slack_webhook",
        "sync_generation",
        "created_at",
        "updated_at",
    )
    actions = ("archive_selected",)
    formfield_overrides = {
        models.JSONField: {
            "widget": Textarea(attrs={"rows": 3, "cols": 80, "style": "font-family:monospace"})
        },
    }
    fieldsets = (
        (None, {"fields": ("name", "slug", "description", "is_active")}),
        (
            "Pomerium Zero policy",
            {
                "fields": (
                    "cluster",
                    "expiry",
                    "zero_policy_name",
                    "base_ppl",
                    "routes",
                    "ppl_problems",
                    "zero_status",
                ),
                "description": "The portal owns this policy: grants are added to the base "
                "rules below, and the whole policy is rewritten on every change. Base rules "
                "are a JSON list of PPL rules; anything Pomerium accepts is accepted "
                "(not_in, mcp_tool, ssh_* criteria, empty rules). A date without a zone, "
                "such as 2150-01-02T16:20:00, is read as UTC; write Z or an offset to be "
                "explicit.",
            },
        ),
        (
            "Who may ask and who decides",
            {
                "fields": (
                    "requester_groups",
                    "approver_groups",
                    "approvals_required",
                    "approval_stages",
                    "auto_approve_rules",
                )
            },
        ),
        (
            "Durations",
            {
                "fields": (
                    "duration_choices",
                    "max_duration_minutes",
                    "allow_scheduled",
                    "max_schedule_ahead_days",
                )
            },
        ),
        (
            "What a request must say",
            {"fields": ("justification_required", "justification_min_length", "ticket_required")},
        ),
        (
            "Recurring window",
            {
                "fields": ("schedule",),
                "description": "Grants open only inside this weekly window (PPL day_of_week "
                "and time_of_day). The window may not cross midnight UTC at any offset of "
                "its zone. Break-glass ignores it.",
            },
        ),
        ("Break-glass", {"fields": ("break_glass_groups", "break_glass_max_minutes")}),
        (
            "Notifications",
            {
                "fields": (
                    "slack_channel",
                    "slack_webhook",
                    "slack_webhook_replace",
                    "slack_webhook_clear",
                )
            },
        ),
        ("Bookkeeping", {"fields": ("sync_generation", "created_at", "updated_at")}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Resource]:
        return super().get_queryset(request).restrict(request_user(request))  # type: ignore[attr-defined]

    @admin.display(description="Expiry")
    def expiry(self, obj: Resource | None) -> str:
        """Who closes a grant's rule at its end on the resource's target (read-only)."""
        name = obj.cluster if obj is not None and obj.pk else clusters.default_cluster_name()
        text = targets.expiry_enforcement(name)
        return text[:1].upper() + text[1:]

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        if self.has_change_permission(request, obj) or (
            obj is None and self.has_add_permission(request)
        ):
            return fieldsets
        # View-only: the write-only inputs have nothing to show.
        return [
            (
                name,
                {
                    **opts,
                    "fields": tuple(
                        f
                        for f in opts["fields"]
                        if not (isinstance(f, str) and f.startswith("slack_webhook_"))
                    ),
                },
            )
            for name, opts in fieldsets
        ]

    @admin.display(description="Slack webhook")
    def slack_webhook(self, obj: Resource) -> str:
        return masked_webhook(obj.slack_webhook_url)

    @admin.display(description="Zero policy")
    def policy(self, obj: Resource) -> str:
        return obj.policy_name

    @admin.display(description="Zero sync")
    def zero_sync(self, obj: Resource) -> str:
        state = getattr(obj, "zero", None)
        if state is None or state.last_attempt_at is None:
            return "not synced yet"
        if state.last_error and (
            state.last_success_at is None or state.last_error_at > state.last_success_at
        ):
            return "error"
        if state.duplicate_policy_ids:
            return "DUPLICATE POLICIES in Zero: the portal will not pick one"
        if state.pending_apply:
            return "not enforced yet: " + (state.pending_reason or "waiting for changeset apply")
        return "current" if state.synced_generation >= obj.sync_generation else "pending"

    @admin.display(description="What Pomerium would refuse")
    def ppl_problems(self, obj: Resource) -> str:
        """Stored base rules and level criteria that Pomerium refuses (saved before the
        portal checked values as strictly as Pomerium does): the sync refuses invalid base
        rules, and leaves a level's invalid criteria out of every grant approved with it."""
        found = [f"Base rules: {p}" for p in validate_ppl(obj.base_ppl or [])[:3]]
        if obj.pk:
            for level in obj.levels.all():
                found += [f"Level {level.name}: {p}" for p in criteria_errors(level.criteria)[:3]]
        if not found:
            return "none"
        return format_html('<strong style="color:#b42318">{}</strong>', "; ".join(found[:10]))

    @admin.display(description="Sync status in Pomerium Zero")
    def zero_status(self, obj: Resource) -> str:
        state = getattr(obj, "zero", None) if obj.pk else None
        if state is None:
            return "The worker has not synced this resource yet."
        link = reverse("admin:zero_policysync_change", args=[state.pk])
        routes = ", ".join(r.get("name", "?") for r in state.routes or []) or "none yet"
        return format_html(
            "{} · cluster {} · remote policy <code>{}</code> · last success {} · "
            "last error: {} · routes using it: {} · <a href='{}'>details and Sync now</a>",
            self.zero_sync(obj),
            f"{obj.cluster} ({state.cluster_id})" if state.cluster_id else obj.cluster,
            state.remote_policy_id or "—",
            state.last_success_at or "never",
            state.last_error or "none",
            routes,
            link,
        )

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        return without_delete_selected(super().get_actions(request))

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        if formset.model is not AccessLevel:
            super().save_formset(request, form, formset, change)
            return
        save_levels(form.instance, formset, actor=request_user(request))

    def save_model(
        self, request: HttpRequest, obj: Resource, form: ModelForm, change: bool
    ) -> None:
        # The resource-config service saves, audits resource.created/changed with the
        # changed field names, and bumps the sync generation (the Zero sync is enqueued
        # after commit), all in one transaction; bootstrap uses the same path.
        changed = [f for f in form.changed_data if not f.startswith("slack_webhook_")]
        if isinstance(form, ResourceAdminForm):
            if form.webhook_changed():
                changed.append("slack_webhook_url")
            form.apply_webhook(obj)
        save_resource(obj, actor=request_user(request), changed=changed, created=not change)

    @admin.action(
        description="Archive selected resources (no new requests)", permissions=["change"]
    )
    def archive_selected(self, request: HttpRequest, queryset: QuerySet[Resource]) -> None:
        actor = request_user(request)
        archived = 0
        for resource in queryset.filter(is_active=True).order_by("pk"):
            resource.is_active = False
            save_resource(resource, actor=actor, changed=["is_active"], created=False)
            archived += 1
        self.message_user(request, f"{archived} archived.", messages.SUCCESS)


# --- Requests ------------------------------------------------------------------------------


def _approve(actor: Any, req: AccessRequest, data: dict[str, Any]) -> str:
    cap = data.get("duration_minutes")
    # A batch cap shortens only the requests that asked for more than it.
    minutes = cap if cap and cap < req.duration_minutes else None
    level = None
    if slug := data.get("level"):
        # Like the cap, a lower level applies to the requests that asked for more.
        level = req.resource.levels.filter(slug=slug).first()
        if level is None:
            raise PolicyViolation(f"{req.resource.name} has no access level {slug!r}.")
        if req.level is not None and level.rank >= req.level.rank:
            level = None
    grant = services.approve_request(
        req, approver=actor, duration_minutes=minutes, level=level, note=data.get("note") or ""
    )
    return "approved" if grant is not None else "recorded (more approvals needed)"


def _reject(actor: Any, req: AccessRequest, data: dict[str, Any]) -> str:
    services.reject_request(req, approver=actor, reason=data["reason"])
    return "rejected"


def _is_pending(req: AccessRequest) -> bool:
    return req.state == RequestState.PENDING


def _with_approvals(requests: QuerySet[AccessRequest]) -> QuerySet[AccessRequest]:
    # The intermediate page shows the conditions earlier approvers set: one query a batch.
    return requests.prefetch_related(
        Prefetch("approvals", Approval.objects.select_related("approver", "level"))
    )


def _briefs(request: HttpRequest, objects: list[AccessRequest]) -> dict[str, Any]:
    """What the approve and reject pages show of each request before the decision."""
    return {"briefs": briefs.request_briefs(objects, zone=zone_for(request), now=timezone.now())}


def _approve_form_kwargs(request: HttpRequest, objects: list[AccessRequest]) -> dict[str, Any]:
    """What the approve form offers: durations below the longest asked, lower levels."""
    resources = {r.resource_id for r in objects}
    durations: tuple[int, ...] = ()
    if len(resources) == 1:
        durations = tuple(objects[0].resource.duration_choices)
    return {
        "longest": max((r.duration_minutes for r in objects), default=None),
        "durations": durations,
        "levels": tuple((lv.slug, level_summary(lv)) for lv in briefs.lower_levels(objects)),
    }


APPROVE = ConfirmedAction(
    name="approve_selected",
    slug="approve",
    title="Approve access requests",
    button="Approve",
    permission="decide",
    form_class=ApproveForm,
    apply=_approve,
    applicable=_is_pending,
    rows=_with_approvals,
    form_kwargs=_approve_form_kwargs,
    context=_briefs,
)
REJECT = ConfirmedAction(
    name="reject_selected",
    slug="reject",
    title="Reject access requests",
    button="Reject",
    permission="decide",
    form_class=RejectForm,
    apply=_reject,
    applicable=_is_pending,
    rows=_with_approvals,
    danger=True,
    context=_briefs,
)


_SPACES = re.compile(r"[ \t\r\n]+")


def _moment(value: Any, same_day_as: Any = None) -> str:
    """``Mon 3 Jun 14:00 CEST`` in the active zone (the reader's); only ``14:00 CEST`` on the
    day of ``same_day_as``."""
    local = timezone.localtime(value)
    if same_day_as is not None and timezone.localtime(same_day_as).date() == local.date():
        return f"{local:%H:%M} {abbreviation(local)}"
    return f"{local:%a} {local.day} {local:%b %H:%M} {abbreviation(local)}"


class WaitingForMeFilter(admin.SimpleListFilter):
    """Requests the reader may still decide and has not approved (the index's count)."""

    title = "waiting for"
    parameter_name = "waiting"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("me", "me")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() != "me":
            return queryset
        mine = inbox.waiting_for(request_user(request), timezone.now())
        return queryset.filter(pk__in=mine.values("pk"))


class WaitingFilter(admin.SimpleListFilter):
    title = "age"
    parameter_name = "age"
    BANDS = {
        "1h": ("under an hour", 0, 1),
        "4h": ("1 to 4 hours", 1, 4),
        "24h": ("4 to 24 hours", 4, 24),
        "old": ("over a day", 24, None),
    }

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(key, band[0]) for key, band in self.BANDS.items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        band = self.BANDS.get(self.value() or "")
        if band is None:
            return queryset
        now = timezone.now()
        _, younger, older = band
        queryset = queryset.filter(created_at__lte=now - timedelta(hours=younger))
        if older is not None:
            queryset = queryset.filter(created_at__gt=now - timedelta(hours=older))
        return queryset


class ApprovalInline(ParentViewInline):
    model = Approval
    fields = readonly_fields = ("approver", "created_at", "duration_minutes", "level", "note")
    verbose_name_plural = "approvals so far (each with the conditions its approver set)"


@admin.register(AccessRequest)
class AccessRequestAdmin(ReadOnlyAdmin):
    # Fewer, narrower columns (state and approvals stay on screen at 1280 px, beside the
    # filters) and a detail line under each row (``list_detail``): kind, age, ticket and
    # the start of the justification.
    list_display = (
        "id",
        "state_badge",
        "requester",
        "resource",
        "level_shown",
        "window",
        "approvals",
    )
    list_filter = (
        "state",
        "kind",
        ("resource", BoundedRelatedOnlyFilter),
        ("requester", BoundedRelatedOnlyFilter),
        WaitingForMeFilter,
        WaitingFilter,
        # By date, in place of a date hierarchy: its choices cost no query, where the
        # hierarchy read every visible request twice per page (first/last, then months).
        "created_at",
    )
    search_fields = ("requester__email", "justification", "ticket")
    # The grant (a reverse one-to-one) gives an approved request's real window: one join.
    list_select_related = ("requester", "resource", "level", "approved_level", "grant")
    list_only = (
        "requester",
        "requester__email",
        "requester__display_name",
        "requester__username",
        "resource",
        "resource__name",
        "resource__approvals_required",
        "resource__approval_stages",
        "resource__approver_groups",
        "kind",
        "extends_grant",
        "level",
        "level__name",
        "level__approvals_required",
        "level__approval_stages",
        "approved_level",
        "approved_level__name",
        "approved_level__approvals_required",
        "approved_level__approval_stages",
        "duration_minutes",
        "approved_duration_minutes",
        "start_at",
        "justification",
        "ticket",
        "created_at",
        "state",
        "auto_approved_rule",
        "grant__id",
        "grant__not_before",
        "grant__expires_at",
    )
    # 50 rows, not 100: rendering the rows is most of what is left of the page's cost once
    # its queries are bounded; the pages after it are one click on.
    list_per_page = 50
    # A filtered page says "N results (Show all)", not the total of every visible request,
    # which took a second COUNT(*) per page view.
    show_full_result_count = False
    actions = ("approve_selected", "reject_selected")
    confirmed_actions = (APPROVE, REJECT)
    change_list_template = "admin/access/accessrequest/change_list.html"
    inlines = (ApprovalInline,)
    fieldsets = (
        (
            "Request",
            {
                "fields": (
                    "requester",
                    "filed_by",
                    "resource",
                    "kind",
                    "extends_grant",
                    "level",
                    "duration_minutes",
                    "start_at",
                    "justification",
                    "ticket",
                )
            },
        ),
        (
            "Decision",
            {
                "fields": (
                    "state",
                    "approval_quorum",
                    "created_at",
                    "expires_at",
                    "decided_by",
                    "decided_at",
                    "decision_reason",
                    "approved_duration_minutes",
                    "approved_level",
                    "auto_approved_rule",
                    "reminded_at",
                )
            },
        ),
    )
    readonly_fields = ("approval_quorum",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[AccessRequest]:
        # Least privilege: the one rule (``visibility``), as on every page and in the API.
        visible = super().get_queryset(request).restrict(request_user(request))  # type: ignore[attr-defined]
        return visible.annotate(approval_count=approval_count())

    def get_ordering(self, request: HttpRequest) -> list[Any]:
        # Pending first, newest first within each group (then the id, which the admin adds).
        # An expression, because `ordering` may only name model fields; the index
        # `request_admin_order` holds exactly this order.
        return [pending_first().asc(), "-created_at"]

    def has_decide_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("access.decide_accessrequest")

    @admin.action(description="Approve selected requests…", permissions=["decide"])
    def approve_selected(self, request: HttpRequest, queryset: QuerySet[AccessRequest]) -> Any:
        return run_confirmed(self, request, queryset, APPROVE)

    @admin.action(description="Reject selected requests…", permissions=["decide"])
    def reject_selected(self, request: HttpRequest, queryset: QuerySet[AccessRequest]) -> Any:
        return run_confirmed(self, request, queryset, REJECT)

    @admin.display(description="level", ordering="level__rank")
    def level_shown(self, obj: AccessRequest) -> str:
        if obj.level_id is None:
            return "—"
        if obj.approved_level_id is not None and obj.approved_level_id != obj.level_id:
            return f"{obj.approved_level} (asked {obj.level})"
        return str(obj.level)

    @admin.display(description="window")
    def window(self, obj: AccessRequest) -> str:
        """The granted window when there is a grant; otherwise when it would start and how
        long it would last. In the reader's zone (the page renders in it)."""
        grant = getattr(obj, "grant", None)
        if grant is not None:
            start, end = _moment(grant.not_before), _moment(grant.expires_at, grant.not_before)
            return f"{start} \N{EN DASH} {end}"
        text = duration_label(obj.approved_duration_minutes or obj.duration_minutes)
        if obj.approved_duration_minutes and obj.approved_duration_minutes != obj.duration_minutes:
            text += f" (asked {duration_label(obj.duration_minutes)})"
        if obj.kind == RequestKind.EXTENSION:
            return f"+{text} to grant #{obj.extends_grant_id}"
        if obj.start_at is None:
            return f"on approval, {text}"
        return f"from {_moment(obj.start_at)}, {text}"

    def list_detail(self, obj: AccessRequest) -> str:
        """The line under each row: kind, age, ticket and the start of the justification."""
        parts = []
        if obj.kind != RequestKind.NEW:
            parts.append(obj.get_kind_display())
        parts.append(f"asked {timesince(obj.created_at, depth=1)} ago")
        if obj.ticket:
            parts.append(f"ticket {obj.ticket}")
        # Line breaks and runs of spaces fold into one space (not str.split(), which would
        # also drop the separators that the page must show escaped).
        justification = _SPACES.sub(" ", obj.justification).strip()
        if justification:
            parts.append(f"“{Truncator(justification).chars(140)}”")
        return format_html("{}", " · ".join(parts))

    @staticmethod
    def _approval_counts(obj: AccessRequest) -> tuple[int, int]:
        # The changelist annotates the count; the change page falls back to one query.
        count = getattr(obj, "approval_count", None)
        if count is None:
            count = obj.approvals.count()
        level = obj.effective_level if obj.level_id is not None else None
        # Every stage's count (one stage without stages: the quorum).
        return count, sum(s.count for s in stages.stages_for(obj.resource, level))

    @admin.display(description="approvals")
    def approvals(self, obj: AccessRequest) -> str:
        if obj.kind == RequestKind.BREAK_GLASS:
            return "break-glass"
        if obj.auto_approved_rule:
            return "automatic"
        return "{} of {}".format(*self._approval_counts(obj))

    @admin.display(description="approvals (quorum)")
    def approval_quorum(self, obj: AccessRequest) -> str:
        """Each stage's approvals and, while the request waits, who can approve now."""
        states, _ = stages.progress(obj)
        lines = stages.describe(states)
        if obj.state == RequestState.PENDING:
            for state, people in stages.who_can_approve(obj):
                names = ", ".join(p.label for p in people) or "nobody right now"
                lines.append(f"Can approve stage {state.stage.number} now: {names}")
        return format_html_join(mark_safe("<br>"), "{}", ((line,) for line in lines))

    @admin.display(description="state", ordering="state")
    def state_badge(self, obj: AccessRequest) -> str:
        return badge(obj.state, obj.get_state_display())


# Registers GrantAdmin; kept in its own module to keep each under ~500 lines.
from . import admin_grants  # noqa: E402, F401
