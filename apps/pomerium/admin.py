"""The "Zero policy sync" admin: per resource, what Zero holds and whether it is current.

View-only (rows are written by the sync alone); one action, "Sync now", which enqueues
a forced sync per selected row and is allowed to superusers and to those who may decide
access requests. Each person sees the rows of the resources they may see
(``apps.access.visibility``), like the resource list.

The resource list and page show each resource's sync status too: this module adds the
"Zero sync" column and the "Sync status in Pomerium" field to the Resource admin
(``ResourceAdmin.add_column`` / ``add_detail``), reading its own table.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.text import Truncator

from apps.access import targets, visibility
from apps.access.admin import ResourceAdmin
from apps.access.admin.actions import ReadOnlyAdmin
from apps.access.models import Resource
from apps.accounts.middleware import request_user
from apps.kit.admin_base import ReadOnlyModelAdmin, StrictIdsMixin
from apps.pomerium.models import PolicySync, ZeroCluster

SYNC_PERMISSION = "access.decide_accessrequest"
WARNING = '<strong style="color:#b42318">{}</strong>'


@admin.register(PolicySync)
class PolicySyncAdmin(ReadOnlyModelAdmin, StrictIdsMixin):
    # Read-only: deleting a row would only make the next sync re-adopt the policy by name.
    list_display = (
        "resource",
        "cluster",
        "remote_policy_id",
        "generations",
        "last_success_at",
        "error_summary",
        "enforcement",
        "routes_attached",
    )
    list_filter = ("pending_apply", "resource__cluster", "resource__is_active")
    list_select_related = ("resource",)
    # The rows need these; the resource's JSON settings and the sync's digests stay unread.
    list_only = (
        "resource",
        "resource__name",
        "resource__slug",
        "resource__zero_policy_name",
        "resource__sync_generation",
        "resource__cluster",
        "cluster_id",
        "remote_policy_id",
        "synced_generation",
        "last_success_at",
        "last_error",
        "consecutive_failures",
        "duplicate_policy_ids",
        "pending_apply",
        "pending_reason",
        "routes",
    )
    search_fields = ("resource__name", "resource__slug", "remote_policy_id")
    show_full_result_count = False  # one COUNT(*) per page view, not two
    actions = ("sync_now",)
    fields = (
        "resource",
        "cluster",
        "remote_policy_id",
        "synced_generation",
        "desired_generation",
        "remote_digest",
        "last_written_at",
        "last_attempt_at",
        "last_success_at",
        "last_error",
        "last_error_at",
        "consecutive_failures",
        "enforcement",
        "confirmed_by",
        "pending_apply",
        "pending_changeset_ids",
        "pending_reason",
        "duplicates",
        "attempted_digests",
        "routes_attached",
        "retired",
        "due_at",
        "boundary_eta",
        "lease_owner",
        "lease_until",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[PolicySync]:
        # Only the resources this person may see (the one rule, ``apps.access.visibility``).
        return visibility.restrict(
            super().get_queryset(request),
            request_user(request),
            visibility.VIEW,
            resource="resource",
        )

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Approvers see why a grant is not live yet, without a separate permission.
        return super().has_view_permission(request, obj) or self.has_sync_permission(request)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return super().has_module_permission(request) or self.has_sync_permission(request)

    def has_sync_permission(self, request: HttpRequest) -> bool:
        user = request.user
        return bool(user.is_active and (user.is_superuser or user.has_perm(SYNC_PERMISSION)))

    @admin.display(description="Synced / desired generation")
    def generations(self, obj: PolicySync) -> str:
        return f"{obj.synced_generation} / {obj.resource.sync_generation}"

    @admin.display(description="Cluster", ordering="resource__cluster")
    def cluster(self, obj: PolicySync) -> str:
        """The resource's cluster by name, and the Zero cluster id the policy is in (a move
        shows both until the new cluster holds it)."""
        held = obj.cluster_id or "not written yet"
        return f"{obj.resource.cluster} ({held})"

    @admin.display(description="Policies left in former clusters")
    def retired(self, obj: PolicySync) -> str:
        pending = obj.retired_policies if isinstance(obj.retired_policies, list) else []
        if not pending:
            return "none"
        listed = ", ".join(
            f"{r.get('policy_id')} in {r.get('cluster_id')}" for r in pending if isinstance(r, dict)
        )
        return f"{listed}: deleted once the policy is enforced in {obj.resource.cluster}"

    @admin.display(description="Desired generation")
    def desired_generation(self, obj: PolicySync) -> int:
        return obj.resource.sync_generation

    @admin.display(description="Last error")
    def error_summary(self, obj: PolicySync) -> str:
        if not obj.last_error:
            return "-"
        failures = f" ({obj.consecutive_failures} in a row)" if obj.consecutive_failures else ""
        return Truncator(obj.last_error).chars(120) + failures

    @admin.display(description="Enforced in Pomerium")
    def enforcement(self, obj: PolicySync) -> str:
        """One loud line: duplicates first (the portal will not pick one), then a change
        that waits for a human to apply a changeset, else "yes"."""
        if obj.duplicate_policy_ids:
            return format_html(
                WARNING,
                f"DUPLICATE POLICIES: {len(obj.duplicate_policy_ids)} "
                f"{targets.enforcer(obj.resource.cluster)} policies are named "
                f"{obj.resource.policy_name!r}; delete all but one in "
                f"{targets.console(obj.resource.cluster)}",
            )
        if obj.pending_apply:
            return format_html(WARNING, "NOT YET: " + (obj.pending_reason or "changeset pending"))
        if obj.last_success_at is None:
            return "never synced"
        return "yes"

    @admin.display(description="Duplicate policies")
    def duplicates(self, obj: PolicySync) -> str:
        return ", ".join(obj.duplicate_policy_ids or []) or "none"

    @admin.display(description="Routes attached")
    def routes_attached(self, obj: PolicySync) -> str:
        routes = obj.routes if isinstance(obj.routes, list) else []
        names = [
            str(r.get("name") or r.get("from") or r.get("id"))
            + (f" ({r['from']})" if r.get("from") and r.get("name") else "")
            for r in routes
            if isinstance(r, dict)
        ]
        return ", ".join(names) or "none"

    @admin.action(description="Sync now", permissions=["sync"])
    def sync_now(self, request: HttpRequest, queryset: QuerySet[PolicySync]) -> None:
        from apps.pomerium.tasks import sync_resource

        queued = failed = 0
        for resource_id in queryset.values_list("resource_id", flat=True):
            try:
                sync_resource.delay(resource_id=resource_id, force=True)
                queued += 1
            except Exception:  # the broker is down; say so instead of a 500
                failed += 1
        if queued:
            self.message_user(request, f"Queued a sync of {queued} resource(s).", messages.SUCCESS)
        if failed:
            self.message_user(
                request,
                f"Could not queue {failed} sync(s): the task broker is unreachable. "
                "The periodic reconcile will still run.",
                messages.ERROR,
            )


@admin.register(ZeroCluster)
class ZeroClusterAdmin(ReadOnlyAdmin):
    """View-only: who the portal is in each Zero cluster, and how far the tick has read the
    cluster's activity log. Only superusers see it (the default model permissions)."""

    list_display = ("cluster_id", "own_api_user", "identity_learnt_at", "activity_read_at")
    fields = (
        "cluster_id",
        "own_api_user",
        "identity_source",
        "identity_learnt_at",
        "activity_cursor",
        "activity_read_at",
    )
    readonly_fields = fields

    @admin.display(description="The portal's own Zero user")
    def own_api_user(self, obj: ZeroCluster) -> str:
        configured = settings.ZERO_API_USER_ID
        learnt = obj.api_user_email or obj.api_user_id or "not learnt yet"
        if obj.api_user_email and obj.api_user_id:
            learnt = f"{obj.api_user_email} (id {obj.api_user_id})"
        if configured:
            return f"{configured} (ZERO_API_USER_ID); learnt: {learnt}"
        return learnt


# --- The Resource admin's Zero columns ------------------------------------------------------


@admin.display(description="Zero sync")
def zero_sync(obj: Resource) -> str:
    state = getattr(obj, "zero", None)
    if state is None or state.last_attempt_at is None:
        return "not synced yet"
    if state.last_error and (
        state.last_success_at is None or state.last_error_at > state.last_success_at
    ):
        return "error"
    if state.duplicate_policy_ids:
        return (
            f"DUPLICATE POLICIES in {targets.enforcer(obj.cluster)}: the portal will not pick one"
        )
    if state.pending_apply:
        return "not enforced yet: " + (state.pending_reason or "waiting for changeset apply")
    return "current" if state.synced_generation >= obj.sync_generation else "pending"


@admin.display(description="Sync status in Pomerium")
def zero_status(obj: Resource) -> str:
    state = getattr(obj, "zero", None) if obj.pk else None
    if state is None:
        return "The worker has not synced this resource yet."
    link = reverse("admin:zero_policysync_change", args=[state.pk])
    routes = ", ".join(r.get("name", "?") for r in state.routes or []) or "none yet"
    return format_html(
        "{} · cluster {} · remote policy <code>{}</code> · last success {} · "
        "last error: {} · routes using it: {} · <a href='{}'>details and Sync now</a>",
        zero_sync(obj),
        f"{obj.cluster} ({state.cluster_id})" if state.cluster_id else obj.cluster,
        state.remote_policy_id or "—",
        state.last_success_at or "never",
        state.last_error or "none",
        routes,
        link,
    )


ResourceAdmin.add_column(
    "zero_sync",
    zero_sync,
    after="policy",
    select_related=("zero",),
    only=(
        "zero__last_attempt_at",
        "zero__last_success_at",
        "zero__last_error",
        "zero__last_error_at",
        "zero__duplicate_policy_ids",
        "zero__pending_apply",
        "zero__pending_reason",
        "zero__synced_generation",
    ),
)
ResourceAdmin.add_detail("zero_status", zero_status, fieldset="Pomerium policy")
