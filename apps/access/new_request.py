"""The requester's new-request page (``/requests/new``): the form, the hints it offers
(levels, windows, what Pomerium denied), and the submission through ``services``."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from apps import ppl
from apps.accounts.middleware import request_user
from apps.accounts.timezones import zone_for

from . import reach, schedules, services
from .durations import duration_label
from .forms import (
    RequestForm,
    approved_at_once,
    level_choices,
)
from .models import AccessRequest, Grant, Resource
from .states import AccessError, OutsideWindow, RequestKind, RequestState
from .views import render_page


def _resource_hints(
    request: HttpRequest, resources: list[Resource], open_grants: dict[int, Grant]
) -> dict[str, dict[str, Any]]:
    """What the page's small script needs to adapt the form to the chosen resource."""
    hints = {}
    zone, now = zone_for(request), timezone.now()
    groups = request_user(request).group_names()
    for r in resources:
        grant = open_grants.get(r.pk)
        schedule = r.parsed_schedule()
        hints[r.slug] = {
            "levels": [list(choice) for choice in level_choices(r, groups)],
            "level": _initial_level(r, grant, request.GET, groups),
            "schedule": schedules.describe_for(schedule, zone, now) if schedule else "",
            "durations": [[m, duration_label(m)] for m in sorted(set(r.duration_choices))],
            "extends": bool(grant),
            "allow_scheduled": r.allow_scheduled,
            "justification_min": r.justification_min_length if r.justification_required else 0,
            "ticket_required": r.ticket_required,
            "description": r.description,
        }
    return hints


def _initial_level(
    resource: Resource, grant: Grant | None, query: Any, groups: set[str] | None = None
) -> str:
    """The level to pre-select: the lowest that would have allowed the ``method`` and
    ``path`` Pomerium denied (query parameters), else the open grant's, else the lowest
    that would be approved at once for the person (``groups``), else the highest (what a
    request naming no level asks for; approvers may lower it)."""
    levels = list(resource.levels.all())
    if not levels:
        return ""
    method = (query.get("method") or "")[:16].upper() or None
    path = (query.get("path") or "")[:2000] or None
    if method or path:
        for level in levels:  # ordered by rank, lowest first
            if ppl.matches_request(level.criteria, method=method, path=path):
                return level.slug
        return levels[-1].slug
    if grant is not None and grant.level is not None:
        return grant.level.slug
    at_once = approved_at_once(resource, groups or set())
    for level in levels:  # lowest first
        if level.slug in at_once:
            return level.slug
    return levels[-1].slug


@require_http_methods(["GET", "POST"])
def request_new(request: HttpRequest) -> HttpResponse:
    user = request_user(request)
    resources = Resource.objects.requestable_by(user)
    if not resources:
        return render_page(
            request,
            "access/nothing_to_request.html",
            {"groups": sorted(user.group_names())},
        )
    open_grants = {
        g.resource_id: g
        for g in Grant.objects.open().filter(user=user).select_related("resource", "level")
    }
    preselect_error = ""
    zone, now = zone_for(request), timezone.now()
    groups = user.group_names()
    if request.method == "POST":
        form = RequestForm(request.POST, user=user, resources=resources, zone=zone, groups=groups)
        if form.is_valid():
            data = form.cleaned_data
            try:
                req = services.submit_request(
                    requester=user,
                    resource=data["resource_obj"],
                    duration_minutes=data["duration"],
                    justification=data["justification"],
                    ticket=data["ticket"],
                    start_at=data["start_at_utc"],
                    level=data["level_obj"],
                )
            except OutsideWindow as exc:
                form.offer_start(exc)
            except AccessError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, _submitted_message(req))
                return redirect("request_detail", pk=req.pk)
    else:
        slug = request.GET.get("resource", "")[:100]
        known = {r.slug for r in resources}
        initial: dict[str, Any] = {}
        if slug in known:
            initial["resource"] = slug
            chosen = next(r for r in resources if r.slug == slug)
            if level := _initial_level(chosen, open_grants.get(chosen.pk), request.GET, groups):
                initial["level"] = level
        elif slug:
            preselect_error = (
                "There is no resource with that name that you may request; choose one below."
            )
        form = RequestForm(
            initial=initial, user=user, resources=resources, zone=zone, groups=groups
        )
    selected_slug = str(form.data.get("resource") or form.initial.get("resource") or "")
    selected = next((r for r in resources if r.slug == selected_slug), None)
    return render_page(
        request,
        "access/request_form.html",
        {
            "form": form,
            "selected": selected,
            "extends": open_grants.get(selected.pk) if selected else None,
            "open_grants": [
                (g, reach.access(g, now=now, zone=zone))
                for g in sorted(open_grants.values(), key=lambda g: g.resource.name)
            ],
            "hints": _resource_hints(request, resources, open_grants),
            "schedule_text": (
                schedules.describe_for(schedule, zone_for(request), timezone.now())
                if selected and (schedule := selected.parsed_schedule())
                else ""
            ),
            "preselect_error": preselect_error,
            "user_has_zone": bool(user.time_zone),
        },
    )


def _submitted_message(req: AccessRequest) -> str:
    name = req.resource.name
    if req.state == RequestState.APPROVED:
        return f"Your request for {name} was approved automatically."
    if req.kind == RequestKind.EXTENSION:
        return f"Your request to extend your access to {name} is waiting for approval."
    return f"Your request for {name} is waiting for approval."
