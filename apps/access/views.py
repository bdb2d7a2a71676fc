"""The requester pages: plain server-rendered forms that work without JavaScript.

Views read, validate with a form, and call one service; they never write a request's or a
grant's state themselves. Every page renders inside the person's time zone
(``apps.accounts.timezones``: ``zone_for`` and its middleware), so templates show local
times, each naming its zone, while the database keeps UTC.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple
from urllib.parse import quote

from django.contrib import messages
from django.db.models import Count, Exists, OuterRef, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.accounts.middleware import request_user
from apps.accounts.services import update_preferences
from apps.accounts.timezones import zone_for, zone_label

from . import clusters, queries, reach, rows, schedules, services, stages, targets, watch
from .durations import duration_label
from .forms import (
    BreakGlassForm,
    PreferencesForm,
)
from .models import AccessRequest, Grant, Resource, breaks_glass, breaks_glass_sql, open_to_sql
from .states import AccessError, RequestState

# The dashboard shows the newest requests; older ones stay in the audit trail and admin.
DASHBOARD_REQUESTS = 50
# Open grants are shown a page at a time (``?grants_page=N``): someone with access to a
# hundred resources still gets the page in constant time.
DASHBOARD_GRANTS = 50
MAX_PAGE = 10_000
# A grant's page lists its newest extensions; someone extended every hour for months still
# gets a page of constant size.
DETAIL_EXTENSIONS = 20


def render_page(
    request: HttpRequest, template: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    # Every {{ datetime }} is in the person's zone (``TimeZoneMiddleware`` activates it).
    zone = zone_for(request)
    return render(request, template, {**context, "zone_name": zone_label(zone)}, status=status)


def _forbidden(request: HttpRequest, reason: str) -> HttpResponse:
    return render_page(request, "errors/403.html", {"reason": reason}, status=403)


# --- Dashboard -----------------------------------------------------------------------------


def _page_number(value: str | None) -> int:
    """A page number from the query string; anything else is page 1 (never an error)."""
    try:
        number = int(value or 1)
    except ValueError:
        return 1
    return min(max(number, 1), MAX_PAGE)


def _detail_url() -> Callable[[int], str]:
    """``reverse("request_detail", args=[pk])`` for many rows, with one ``reverse``.

    The route is ``requests/<int:pk>``: the pk is the URL's last segment.
    """
    prefix = reverse("request_detail", args=[1]).removesuffix("1")
    return lambda pk: f"{prefix}{pk}"


# The dashboard's two tables are the same query for everyone but the person: each is built
# once per process and filtered per page (a filter clones it). Building the requests one,
# with its three subqueries, cost more CPU than PostgreSQL's whole answer (bench/README.md).


@functools.cache
def _grant_rows_shape() -> QuerySet[Grant, tuple[Any, ...]]:
    """Open grants of anyone, by start, as ``rows.GrantRow`` tuples."""
    return Grant.objects.open().order_by("not_before", "pk").values_list(*rows.GrantRow.COLUMNS)


@functools.cache
def _request_rows_shape() -> QuerySet[AccessRequest, tuple[Any, ...]]:
    """Requests of anyone, newest first, as ``rows.RequestRow`` tuples."""
    return (
        AccessRequest.objects.annotate(
            approval_count=queries.approval_count(),
            decided_by_email=queries.email_of("decided_by"),
            revoked_by_email=queries.email_of("grant__revoked_by"),
        )
        .order_by("-created_at", "-pk")
        .values_list(*rows.RequestRow.COLUMNS)
    )


def _dashboard_grants(
    user: Any, page: int, times: rows.LocalTimes, now: datetime
) -> tuple[list[rows.GrantRow], bool]:
    """One page of the person's open grants with their cells formatted, and whether more follow.

    Only the columns the table shows are read, as tuples (``rows.GrantRow``).
    """
    offset = (page - 1) * DASHBOARD_GRANTS
    found = [
        rows.GrantRow.from_values(values)
        for values in _grant_rows_shape().filter(user=user)[offset : offset + DASHBOARD_GRANTS + 1]
    ]
    more = len(found) > DASHBOARD_GRANTS
    grants = found[:DASHBOARD_GRANTS]
    ask_url = reverse("request_new")
    detail_url = _detail_url()
    zone, local = times.zone, times.short
    for g in grants:
        g.window_text = f"{local(g.not_before)} \N{EN DASH} {local(g.expires_at)}"
        schedule = g.parsed_schedule()
        g.schedule_text = schedules.describe(schedule) if schedule else ""
        g.access = reach.access(g, now=now, zone=zone)
        g.detail_url = detail_url(g.request_id)
        g.more_url = f"{ask_url}?resource={quote(g.resource.slug, safe='/')}"
    return grants, more


def _dashboard_requests(user: Any, times: rows.LocalTimes, now: datetime) -> list[rows.RequestRow]:
    requests = [
        rows.RequestRow.from_values(values)
        for values in _request_rows_shape().filter(requester=user)[:DASHBOARD_REQUESTS]
    ]
    detail_url = _detail_url()
    for r in requests:
        r.duration_text = duration_label(r.duration_minutes)
        r.asked_text = times.short(r.created_at)
        r.outcome = reach.outcome(
            r, r.grant, now=now, zone=times.zone, approvals=r.approval_count, required=r.required
        )
        r.detail_url = detail_url(r.pk)
    return requests


class Offer(NamedTuple):
    """A break-glass button of the dashboard."""

    slug: str
    name: str


def _dashboard_offers(user: Any) -> tuple[int, list[Offer]]:
    """How many active resources ``user`` may request (``open_to``), and the break-glass
    buttons: the active resources they may break glass on (``breaks_glass``) and hold no
    open grant of, by name.

    The rules are matched in the query, which counts: one row, whatever the number of
    resources. Only someone a resource lets break glass costs a second query, its buttons.
    """
    groups, using = user.group_names(), Resource.objects.db
    may_ask, may_break = open_to_sql(groups, using), breaks_glass_sql(groups, using)
    counts = Resource.objects.active().aggregate(
        requestable=Count("pk", filter=may_ask), emergency=Count("pk", filter=may_break)
    )
    if not counts["emergency"]:
        return counts["requestable"], []
    held = Grant.objects.open().filter(user=user, resource=OuterRef("pk"))
    buttons = (
        Resource.objects.active()
        .filter(may_break)
        .exclude(Exists(held))
        .order_by("name", "pk")
        .values_list("slug", "name")
    )
    return counts["requestable"], [Offer(*row) for row in buttons]


@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    user = request_user(request)
    times = rows.LocalTimes(zone_for(request))
    now = timezone.now()
    requestable, break_glass = _dashboard_offers(user)
    page = _page_number(request.GET.get("grants_page"))
    grants, more_grants = _dashboard_grants(user, page, times, now)
    requests = _dashboard_requests(user, times, now)
    return render_page(
        request,
        "access/dashboard.html",
        {
            "grants": grants,
            "grant_rows": rows.grant_rows(grants),
            "grants_page": page,
            "more_grants": more_grants,
            "requests": requests,
            "request_rows": rows.request_rows(requests),
            "requestable": requestable,
            "break_glass": break_glass,
            "now": now,
            "limit": DASHBOARD_REQUESTS,
            "watch": _dashboard_watch(grants, requests, now),
            "watch_url": reverse("dashboard_status") + (f"?grants_page={page}" if page > 1 else ""),
        },
    )


def _dashboard_watch(
    grants: list[rows.GrantRow], requests: list[rows.RequestRow], now: datetime
) -> watch.Watch:
    seen = watch.Watch(now)
    for g in grants:
        seen.grant(g.pk, g.request_id, g.access)
    for r in requests:
        seen.request(r.pk, r.state, r.outcome)
    return seen


@require_GET
def dashboard_status(request: HttpRequest) -> JsonResponse:
    """What the dashboard shows, as JSON (``apps.access.watch``): its script polls this while
    something is pending and reloads its content when the digest changes."""
    user = request_user(request)
    times = rows.LocalTimes(zone_for(request))
    now = timezone.now()
    grants, _more = _dashboard_grants(
        user, _page_number(request.GET.get("grants_page")), times, now
    )
    requests = _dashboard_requests(user, times, now)
    return JsonResponse(_dashboard_watch(grants, requests, now).as_json())


# --- Request detail and the requester's own actions ----------------------------------------


def _visible_request(request: HttpRequest, pk: int) -> AccessRequest:
    """The request if this person may see it; 404 otherwise (its existence is not confirmed)."""
    return queries.visible_request(request_user(request), pk)


_grant_of = queries.grant_of


def _latest_extensions(grant: Grant | None) -> tuple[list[Any], bool]:
    """The grant's newest ``DETAIL_EXTENSIONS`` extensions, oldest first, and whether
    earlier ones exist (those stay in the audit trail and the admin)."""
    if grant is None:
        return [], False
    newest = list(
        grant.extensions.select_related("extended_by").order_by("-created_at", "-pk")[
            : DETAIL_EXTENSIONS + 1
        ]
    )
    return newest[:DETAIL_EXTENSIONS][::-1], len(newest) > DETAIL_EXTENSIONS


def _approvals_required(req: AccessRequest) -> int:
    return req.resource.approvals_needed(req.effective_level if req.level_id else None)


def _request_state(
    req: AccessRequest, grant: Grant | None, approvals: int, now: datetime, zone: Any
) -> tuple[str, reach.Access | None, watch.Watch]:
    """A request's outcome, its grant's answer, and what its page watches."""
    required = _approvals_required(req)
    outcome = reach.outcome(req, grant, now=now, zone=zone, approvals=approvals, required=required)
    access = reach.access(grant, now=now, zone=zone) if grant is not None else None
    seen = watch.Watch(now)
    seen.request(req.pk, req.state, outcome)
    if grant is not None and access is not None:
        seen.grant(grant.pk, grant.request_id, access)
    return outcome, access, seen


@require_GET
def request_detail(request: HttpRequest, pk: int) -> HttpResponse:
    req = _visible_request(request, pk)
    user = request_user(request)
    now = timezone.now()
    grant = _grant_of(req)
    approvals = list(req.approvals.select_related("approver"))
    extensions, earlier_extensions = _latest_extensions(grant)
    open_grant = grant is not None and grant.is_open_at(now)
    own_grant = bool(grant and grant.user_id == user.pk)
    req.duration_text = duration_label(req.duration_minutes)  # type: ignore[attr-defined]
    outcome, access, seen = _request_state(req, grant, len(approvals), now, zone_for(request))
    return render_page(
        request,
        "access/request_detail.html",
        {
            "req": req,
            "grant": grant,
            "access": access,
            "closing": reach.closing(grant, now=now, zone=zone_for(request)) if grant else "",
            "outcome": outcome,
            "approvals_required": _approvals_required(req),
            "schedule_text": (
                schedules.describe(schedule)
                if grant is not None and (schedule := grant.parsed_schedule())
                else ""
            ),
            "approvals": approvals,
            "stage_states": stages.progress(req, approvals)[0],
            "can_approve": stages.who_can_approve(req) if req.state == RequestState.PENDING else [],
            "extensions": extensions,
            "earlier_extensions": earlier_extensions,
            "approved_text": duration_label(req.approved_duration_minutes)
            if req.approved_duration_minutes
            else "",
            "can_cancel": req.state == RequestState.PENDING
            and user.pk in (req.requester_id, req.filed_by_id),
            "can_extend": open_grant and own_grant,
            "can_end": open_grant and own_grant,
            "now": now,
            # Only worth saying where there is more than one target to be in.
            "cluster": (
                targets.describe(req.resource.cluster) if len(clusters.configured()) > 1 else ""
            ),
            "watch": seen,
            "watch_url": reverse("request_status", args=[req.pk]),
        },
    )


@require_GET
def request_status(request: HttpRequest, pk: int) -> JsonResponse:
    """What a request's page shows, as JSON (``apps.access.watch``), for its script; the
    same visibility as the page (404 for a request this person may not see)."""
    req = _visible_request(request, pk)
    grant = _grant_of(req)
    _outcome, _access, seen = _request_state(
        req, grant, req.approvals.count(), timezone.now(), zone_for(request)
    )
    return JsonResponse(seen.as_json())


@require_POST
def request_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    req = _visible_request(request, pk)
    try:
        services.cancel_request(req, actor=request_user(request))
    except AccessError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Your request for {req.resource.name} was cancelled.")
    return redirect("request_detail", pk=req.pk)


@require_POST
def request_end_access(request: HttpRequest, pk: int) -> HttpResponse:
    req = _visible_request(request, pk)
    user = request_user(request)
    grant = _grant_of(req)
    if grant is None:
        raise Http404("This request has no grant.")
    if grant.user_id != user.pk:
        return _forbidden(request, "Only the person who holds this access can end it here.")
    try:
        services.end_own_grant(grant, actor=user)
    except AccessError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            f"Your access to {grant.resource.name} has ended. Pomerium drops the rule at the "
            "next sync.",
        )
    return redirect("request_detail", pk=req.pk)


# --- Break-glass ---------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def break_glass(request: HttpRequest, slug: str) -> HttpResponse:
    resource = get_object_or_404(Resource.objects.active(), slug=slug)
    user = request_user(request)
    if not breaks_glass(resource.break_glass_groups, user.group_names()):
        return _forbidden(
            request,
            f"Break-glass access to {resource.name} is only for members of its emergency "
            "groups. Request access the usual way instead.",
        )
    form = BreakGlassForm(request.POST or None, resource=resource)
    if request.method == "POST" and form.is_valid():
        try:
            grant = services.break_glass(
                user=user,
                resource=resource,
                duration_minutes=form.cleaned_data["duration"],
                justification=form.cleaned_data["justification"],
            )
        except AccessError as exc:
            form.add_error(None, str(exc))
        else:
            messages.warning(
                request,
                f"Break-glass access to {resource.name} is active. Every approver has been "
                "told, and it will be reviewed.",
            )
            return redirect("request_detail", pk=grant.request_id)
    return render_page(request, "access/break_glass.html", {"form": form, "resource": resource})


# --- Preferences ---------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest) -> HttpResponse:
    user = request_user(request)
    if request.method == "POST":
        form = PreferencesForm(request.POST)
        if form.is_valid():
            update_preferences(
                user,
                time_zone=form.cleaned_data["time_zone"],
                notify_expiry=form.cleaned_data["notify_expiry"],
            )
            messages.success(request, "Your preferences were saved.")
            return redirect("preferences")
    else:
        form = PreferencesForm(
            initial={"time_zone": user.time_zone, "notify_expiry": user.notify_expiry}
        )
    return render_page(request, "access/preferences.html", {"form": form})
