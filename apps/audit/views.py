"""The auditors' export page: ``/audit/export``.

GET only shows the form; the form POSTs (with its CSRF token), and a valid one streams
the download while an invalid one shows the form again with its errors (400). A link or an
image tag can therefore never start an export in someone's name. Only auditors and
superusers get past the door; others get the 403 page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponseBase
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from . import export
from .errors import AUDITOR, RoleRequired
from .export import download
from .forms import ExportForm
from .models import AuditEvent

EXPORT_PERMISSION = "audit.export_auditevent"


# The accounts app registers its rule (``apps.accounts.roles.may_export``, the one home of
# who exports) here; the trail cannot import it (audit depends on nothing). With no check
# registered, nobody exports.
_role_checks: list[Callable[[Any], bool]] = []


def register_role_check(check: Callable[[Any], bool]) -> None:
    if check not in _role_checks:
        _role_checks.append(check)


def may_export(user: Any) -> bool:
    """Auditors and superusers: the permission *and* the role, checked each time."""
    if not (user.is_authenticated and user.is_active and user.has_perm(EXPORT_PERMISSION)):
        return False
    return bool(_role_checks) and all(check(user) for check in _role_checks)


@require_http_methods(["GET", "POST"])
def export_page(request: HttpRequest) -> HttpResponseBase:
    if not may_export(request.user):
        raise RoleRequired(AUDITOR, "Exporting the audit trail")
    if request.method != "POST":
        return render(request, "audit/export.html", {"form": ExportForm()})
    form = ExportForm(request.POST)
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
