"""The Resource admin: configuration, editable by those with the change permission, never
deleted (archive instead); every save is audited and re-syncs the resource's policy in the
same transaction (``resources.save_resource``). Other apps add their columns with
``ResourceAdmin.add_column`` / ``add_detail`` (zero adds its sync status)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar
from urllib.parse import urlsplit

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.forms import ModelForm, Textarea
from django.http import HttpRequest
from django.utils.html import format_html

from apps.accounts.middleware import request_user
from apps.kit.admin_base import StrictIdsMixin, without_delete_selected
from apps.ppl import criteria_errors, validate_ppl

from .. import clusters, targets
from ..models import AccessLevel, Resource
from ..services.resources import save_levels, save_resource

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
    list_display: tuple[str, ...] = (
        "name",
        "slug",
        "is_active",
        "approvals_required",
        "cluster",
        "policy",
        "updated_at",
    )
    list_only: tuple[str, ...] = (
        "name",
        "slug",
        "cluster",
        "is_active",
        "approvals_required",
        "zero_policy_name",
        "sync_generation",
        "updated_at",
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
    readonly_fields: ClassVar[tuple[str, ...]] = (
        "expiry",
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
    fieldsets: ClassVar[Any] = (
        (None, {"fields": ("name", "slug", "description", "is_active")}),
        (
            "Pomerium policy",
            {
                "fields": (
                    "cluster",
                    "expiry",
                    "zero_policy_name",
                    "base_ppl",
                    "routes",
                    "ppl_problems",
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

    # --- What other apps add (their own tables, read by their own code) -------------------

    @classmethod
    def add_column(
        cls,
        name: str,
        cell: Callable[[Resource], str],
        *,
        after: str,
        select_related: tuple[str, ...] = (),
        only: tuple[str, ...] = (),
    ) -> None:
        """Show ``cell(resource)`` as the changelist column ``name``, right after ``after``.

        ``select_related`` and ``only`` name what the cell reads beyond the resource's own
        columns, so the changelist stays one query. Called once, when the app's admin loads.
        """
        if name in cls.list_display:
            return
        setattr(cls, name, staticmethod(cell))
        at = cls.list_display.index(after) + 1
        cls.list_display = (*cls.list_display[:at], name, *cls.list_display[at:])
        if select_related:
            known = cls.list_select_related
            known = tuple(known) if isinstance(known, list | tuple) else ()
            cls.list_select_related = (*known, *select_related)
        cls.list_only = (*cls.list_only, *only)

    @classmethod
    def add_detail(cls, name: str, field: Callable[[Resource], str], *, fieldset: str) -> None:
        """Show ``field(resource)`` read-only at the end of the change page's ``fieldset``."""
        if name in cls.readonly_fields:
            return
        setattr(cls, name, staticmethod(field))
        cls.readonly_fields = (*cls.readonly_fields, name)
        cls.fieldsets = tuple(
            (title, {**opts, "fields": (*opts["fields"], name)})
            if title == fieldset
            else (title, opts)
            for title, opts in cls.fieldsets
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
