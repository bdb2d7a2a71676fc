"""The auditor's operations: the audit export and the access reports (tag ``auditor``)."""

from __future__ import annotations

from typing import Annotated, Literal

from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.utils import timezone
from ninja import Query, Router

from apps.access import reports
from apps.access.models import Resource
from apps.access.report_forms import AccessReportForm
from apps.accounts.roles import may_export, may_see_reports
from apps.audit import export
from apps.audit.export import download
from apps.audit.forms import ExportForm
from apps.audit.models import AuditEvent

from .api import (
    request_user,
    require,
)
from .middleware import error_response
from .params import READ_ERRORS
from .schemas import (
    AccessReportOut,
)

router = Router()


# --- Auditors ------------------------------------------------------------------------------


def _form_errors(form: ExportForm | AccessReportForm) -> HttpResponse:
    fields = {name: " ".join(str(m) for m in messages) for name, messages in form.errors.items()}
    return error_response(400, "validation_error", "Some filters are malformed.", fields)


@router.get(
    "/audit/export",
    response={200: None, **READ_ERRORS},
    tags=["auditor"],
    openapi_extra={
        "responses": {
            "200": {
                "description": "The entries, streamed (the columns of the page's export).",
                "content": {
                    "application/x-ndjson": {"schema": {"type": "string"}},
                    "text/csv": {"schema": {"type": "string"}},
                },
            }
        }
    },
)
def export_audit(
    request: HttpRequest,
    fmt: Annotated[Literal["jsonl", "csv"], Query(alias="format")] = "jsonl",
    since: Annotated[str, Query(max_length=40)] = "",
    until: Annotated[str, Query(max_length=40)] = "",
    actor: Annotated[str, Query(max_length=254)] = "",
    resource: Annotated[str, Query(max_length=64)] = "",
    action: Annotated[str, Query(max_length=64)] = "",
) -> HttpResponseBase:
    """The audit trail export stream, with the same filters as ``/audit/export``."""
    user = request_user(request)
    require(may_export(user), "Only auditors export the audit trail.")
    form = ExportForm(
        {
            "format": fmt,
            "since": since,
            "until": until,
            "actor": actor,
            "resource": resource,
            "action": action,
        }
    )
    if not form.is_valid():
        return _form_errors(form)
    filters = form.filters()
    event = export.record_export(actor=user, fmt=fmt, filters=filters.as_details(), via="api")
    name = export.filename(fmt, filters.since, filters.until, now=timezone.now())
    return download(filters.apply(AuditEvent.objects.all()), fmt=fmt, name=name, upto_seq=event.seq)


def _report(request: HttpRequest, data: dict[str, str], *, between: bool) -> object:
    require(may_see_reports(request), "Only auditors see access reports.")
    # The resources this person may see (the one rule), as on the admin's report page.
    form = AccessReportForm(
        data, between=between, resources=Resource.objects.restrict(request_user(request))
    )
    if not form.is_valid():
        return _form_errors(form)
    resource = form.cleaned_data["resource"]
    report = reports.run_report(
        request.user,
        resource,
        start=form.cleaned_data["start"] if between else None,
        end=form.cleaned_data["end"] if between else None,
        via="api",
        fmt="json",
    )
    return {
        "report": report.name,
        "resource": resource.slug if resource else None,
        "start": report.start,
        "end": report.end,
        "rows": [row.__dict__ for row in report.rows],
    }


@router.get("/reports/access", response={200: AccessReportOut, **READ_ERRORS}, tags=["auditor"])
def access_report(
    request: HttpRequest,
    resource: Annotated[str, Query(max_length=64)],
    start: Annotated[str, Query(max_length=40)],
    end: Annotated[str, Query(max_length=40)],
) -> object:
    """Who had access to a resource between ``start`` (inclusive) and ``end`` (exclusive)."""
    return _report(request, {"resource": resource, "start": start, "end": end}, between=True)


@router.get("/reports/access-now", response={200: AccessReportOut, **READ_ERRORS}, tags=["auditor"])
def access_now(request: HttpRequest, resource: Annotated[str, Query(max_length=64)] = "") -> object:
    """Who has access now (to one resource, or to all)."""
    return _report(request, {"resource": resource}, between=False)
