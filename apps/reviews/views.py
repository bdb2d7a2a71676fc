"""The reviewer's pages: ``/reviews/`` lists the open items a person reviews, each with a
keep/remove form; the forms POST (with CSRF) and call the one service per item.

Which items a person sees is ``ReviewItem.objects.restrict`` (the one rule); which they may
decide is the service's rule (``may_review`` and not ``concerns``), shown on each item.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from apps.access.states import AccessError
from apps.accounts.middleware import request_user

from . import services
from .forms import DecisionForm, KeepSelectedForm
from .models import Decision, ReviewItem

PAGE = 200


def _open_items(user: Any) -> Any:
    return (
        ReviewItem.objects.restrict(user)
        .undecided()
        .filter(campaign__state="open")
        .select_related("campaign", "grant")
        .order_by("campaign__due_at", "campaign_id", "resource_slug", "kind", "pk")
    )


def _rows(user: Any, items: Iterable[ReviewItem]) -> list[dict[str, Any]]:
    out = []
    for item in items:
        mine = services.may_review(user, item)
        about_me = services.concerns(user, item)
        out.append({"item": item, "can_decide": mine and not about_me, "about_me": about_me})
    return out


@require_GET
def mine(request: HttpRequest) -> HttpResponse:
    user = request_user(request)
    items = list(_open_items(user)[: PAGE + 1])
    now = timezone.now()
    context = {
        "rows": _rows(user, items[:PAGE]),
        "more": len(items) > PAGE,
        "now": now,
        "form": DecisionForm(),
    }
    return render(request, "reviews/mine.html", context)


@require_POST
def decide(request: HttpRequest, pk: int) -> HttpResponse:
    user = request_user(request)
    item = ReviewItem.objects.restrict(user).filter(pk=pk).first()
    if item is None:
        raise Http404("No such review item.")
    form = DecisionForm(request.POST)
    if not form.is_valid():
        rows = _rows(user, [item])
        context = {"rows": rows, "more": False, "now": timezone.now(), "form": form, "only": pk}
        return render(request, "reviews/mine.html", context, status=400)
    try:
        services.decide_item(
            item,
            reviewer=user,
            decision=form.cleaned_data["decision"],
            comment=form.cleaned_data["comment"],
        )
    except AccessError as exc:
        messages.error(request, f"{item.summary}: {exc}")
    else:
        item.refresh_from_db()
        verb = "kept" if item.decision == Decision.KEEP else "removed"
        messages.success(
            request,
            f"{item.resource_name}: {item.summary}: {verb}"
            + (f" ({item.outcome})" if item.outcome else ""),
        )
    return redirect("reviews:mine")


@require_POST
def keep_selected(request: HttpRequest) -> HttpResponse:
    user = request_user(request)
    visible = list(_open_items(user).values_list("pk", flat=True)[: PAGE * 5])
    form = KeepSelectedForm(request.POST, item_ids=visible)
    if not form.is_valid():
        messages.error(request, "Select items you review; nothing was changed.")
        return redirect("reviews:mine")
    kept, skipped = 0, []
    for item in ReviewItem.objects.filter(pk__in=form.cleaned_data["items"]).order_by("pk"):
        try:
            services.decide_item(
                item, reviewer=user, decision=Decision.KEEP, comment=form.cleaned_data["comment"]
            )
        except AccessError as exc:
            skipped.append(f"#{item.pk} {exc}")
        else:
            kept += 1
    text = f"{kept} kept" + (f", {len(skipped)} skipped: " + "; ".join(skipped) if skipped else "")
    (messages.warning if skipped else messages.success)(request, text)
    return redirect("reviews:mine")
