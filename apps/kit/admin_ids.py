"""Junk ids and dates in admin requests are the client's mistake: 400 or 404, never a 500.

Django's admin passes the ids of an action's selection (``_selected_action``) and of a URL
straight to the database. ``abc`` fails as a ValueError, a 30-digit number overflows the
integer column, and either becomes a 500. ``AdminSelectionMiddleware`` answers 400 for any
admin POST whose selection is not all record numbers, for every model admin at once
(including those of apps that know nothing of this); ``is_valid_id`` is the rule.

Its changelists' date filters (``?created_at__gte=...``, the date hierarchy's
``__year``/``__month``/``__day``) are read the same way: a date at the edge of Python's
range (``0001-01-01 00:00:00+05:00``) overflowed in the database adapter or the hierarchy's
arithmetic, and a malformed one gave Django's "Database error" page. The middleware answers
400 with a readable line for either, before the changelist runs
(``apps.kit.instants`` is the rule for dates).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time
from typing import Any

from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import models
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.urls import Resolver404, resolve

from apps.kit import instants

MAX_ID = 2**63 - 1  # BigAutoField: larger numbers cannot name a row in any database


def is_valid_id(value: str) -> bool:
    return value.isascii() and value.isdigit() and 0 < int(value) <= MAX_ID


# Lookups that take a number (a part of a date), with the numbers that keep every date the
# filter computes from them (a day later, in any zone) inside Python's range.
_DATE_PARTS = {
    "year": (2, 9998),
    "iso_year": (2, 9998),
    "quarter": (1, 4),
    "month": (1, 12),
    "week": (1, 53),
    "day": (1, 31),
    "week_day": (1, 7),
    "iso_week_day": (1, 7),
    "hour": (0, 23),
    "minute": (0, 59),
    "second": (0, 59),
}


def _date_field(model: type[models.Model], key: str) -> tuple[models.DateField, list[str]] | None:
    """The date or date-time field a changelist parameter filters on, and its lookups."""
    opts: Any = model._meta
    field = None
    parts = key.split("__")
    for i, part in enumerate(parts):
        try:
            field = opts.get_field(part)
        except FieldDoesNotExist:
            return (field, parts[i:]) if isinstance(field, models.DateField) else None
        if field.is_relation and field.related_model is not None:
            opts = field.related_model._meta
            continue
        rest = parts[i + 1 :]
        return (field, rest) if isinstance(field, models.DateField) else None
    return None


def date_filter_problem(model: type[models.Model], key: str, value: str) -> str:
    """Why a changelist's date filter parameter cannot be used ("" if it can)."""
    found = _date_field(model, key)
    if found is None:
        return ""
    field, lookups = found
    lookup = lookups[-1] if lookups else "exact"
    if lookup == "isnull":
        return ""
    if lookup in _DATE_PARTS:
        low, high = _DATE_PARTS[lookup]
        if not (value.strip().isascii() and value.strip().isdigit() and low <= int(value) <= high):
            return f"{value!r} is not a {lookup.replace('_', ' ')} from {low} to {high}"
        return ""
    values = value.split(",") if lookup in ("in", "range") else [value]
    for item in values:
        try:
            parsed = field.to_python(item.strip())
        except (ValidationError, ValueError, OverflowError):
            return f"{item!r} is not a date or date-time (e.g. 2026-11-01 or 2026-11-01 09:30)"
        if parsed is None:
            continue
        moment = parsed if isinstance(parsed, datetime) else datetime.combine(parsed, time.min)
        if not instants.usable(moment):
            return f"{item!r} {instants.OUT_OF_RANGE}"
        if (
            isinstance(field, models.DateTimeField)
            and lookup != "date"
            and moment.utcoffset() is None
        ):
            # The filter links always carry one; a time without a zone means nothing here.
            return f"{item!r} has no time zone (e.g. 2026-11-01 00:00:00+00:00)"
    return ""


def _changelist_model(request: HttpRequest) -> type[models.Model] | None:
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return None
    model_admin = getattr(match.func, "model_admin", None)
    if model_admin is None or not (match.url_name or "").endswith("_changelist"):
        return None
    return model_admin.model


class AdminSelectionMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if (
            request.method == "POST"
            and request.path.startswith("/admin/")
            and not all(is_valid_id(v) for v in request.POST.getlist(ACTION_CHECKBOX_NAME))
        ):
            return HttpResponseBadRequest(
                "The selection holds an id that is not a record number; nothing was changed.",
                content_type="text/plain",
            )
        if request.method == "GET" and request.path.startswith("/admin/") and request.GET:
            problem = self._date_filter_problem(request)
            if problem:
                return HttpResponseBadRequest(problem, content_type="text/plain; charset=utf-8")
        return self.get_response(request)

    @staticmethod
    def _date_filter_problem(request: HttpRequest) -> str:
        model = _changelist_model(request)
        if model is None:
            return ""
        for key, values in request.GET.lists():
            for value in values:
                problem = date_filter_problem(model, key, value)
                if problem:
                    return f"The filter {key}: {problem}. Change or remove it; nothing was shown."
        return ""
