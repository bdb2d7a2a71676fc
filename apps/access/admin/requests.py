"""The request admin: read-only, with Approve and Reject as confirmed actions (``actions``)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from django.contrib import admin
from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import escape, format_html_join
from django.utils.safestring import mark_safe
from django.utils.timesince import timesince

from apps.accounts.middleware import request_user
from apps.accounts.timezones import abbreviation, zone_for
from apps.kit import choices
from apps.kit.admin_autocomplete import AutocompleteFilter, AutocompleteFiltersMixin
from apps.kit.text import truncate_chars

from .. import briefs, inbox, services, stages
from ..durations import duration_label
from ..forms import (
    ApproveForm,
    RejectForm,
)
from ..levels import level_summary
from ..models import AccessRequest, Approval, pending_first
from ..queries import approval_count
from ..states import PolicyViolation, RequestKind, RequestState
from .actions import (
    ConfirmedAction,
    ParentViewInline,
    ReadOnlyAdmin,
    badge,
    run_confirmed,
)

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
class AccessRequestAdmin(AutocompleteFiltersMixin, ReadOnlyAdmin):
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
        ("resource", AutocompleteFilter),
        ("requester", AutocompleteFilter),
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
            parts.append(choices.display(obj, "kind"))
        parts.append(f"asked {timesince(obj.created_at, depth=1)} ago")
        if obj.ticket:
            parts.append(f"ticket {obj.ticket}")
        # Line breaks and runs of spaces fold into one space (not str.split(), which would
        # also drop the separators that the page must show escaped).
        justification = _SPACES.sub(" ", obj.justification).strip()
        if justification:
            parts.append(f"“{truncate_chars(justification, 140)}”")
        return escape(" · ".join(parts))  # format_html("{}", ...) of plain text

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
        return badge(obj.state, choices.display(obj, "state"))
