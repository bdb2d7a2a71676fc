"""The auditors' export page: ``/audit/export``.

GET without ``format`` shows the form; with it, a valid form streams the download and an
invalid one shows the form again with its errors (400). Only auditors
(``audit.export_auditevent``) and superusers get past the door; others get the 403 page.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseBase, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone

from . import export
from .forms import ExportForm
from .models import AuditEvent

EXPORT_PERMISSION = "audit.export_auditevent"


def may_export(user: Any) -> bool:
    """Auditors hold the permission; active superusers hold every permission."""
    return bool(user.is_authenticated and user.has_perm(EXPORT_PERMISSION))


def download(queryset: Any, *, fmt: str, name: str, upto_seq: int) -> StreamingHttpResponse:
    """Stream ``queryset`` (entries up to ``upto_seq``) as an attachment called ``name``."""
    rows = export.entries(queryset, upto_seq=upto_seq)
    response = StreamingHttpResponse(
        export.encoded(export.chunks(rows, fmt)), content_type=export.FORMATS[fmt]
    )
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "no-store"
    return response


def export_page(request: HttpRequest) -> HttpResponseBase:
    if not may_export(request.user):
        raise PermissionDenied
    if "format" not in request.GET:
        return render(request, "audit/export.html", {"form": ExportForm()})
    form = ExportForm(request.GET)
    if not form.is_valid():
        return render(request, "audit/export.html", {"form": form}, status=400)
    filters = form.filters()
    fmt = form.cleaned_data["format"]
    now = timezone.now()
    event = export.record_export(
        actor=request.user, fmt=fmt, filters=filters.as_details(), via="web"
    )
    name = export.filename(fmt, filters.since, filters.until, now=now)
    return download(filters.apply(AuditEvent.objects.all()), fmt=fmt, name=name, upto_seq=event.seq)
