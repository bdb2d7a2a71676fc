"""Every kind of page carries the CSP and ``Cache-Control: private, no-store``."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from tests.factories import ResourceFactory

pytestmark = pytest.mark.django_db

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)([^>]*)>", re.I)
NONCE = re.compile(r"'nonce-([A-Za-z0-9+/=]+)'")


def check_headers(response: Any, what: str) -> None:
    csp = response.get("Content-Security-Policy", "")
    assert "default-src 'self'" in csp, what
    assert "object-src 'none'" in csp and "frame-ancestors 'none'" in csp, what
    assert "base-uri 'none'" in csp and "form-action 'self'" in csp, what
    script_src = next(d for d in csp.split(";") if d.strip().startswith("script-src"))
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src, what
    assert response["Cache-Control"] == "private, no-store", what
    if not getattr(response, "streaming", False):
        nonces = set(NONCE.findall(csp))
        for attributes in INLINE_SCRIPT.findall(response.content.decode()):
            if "application/json" in attributes:
                continue  # data, not code
            found = re.search(r'nonce="([^"]+)"', attributes)
            assert found and found.group(1) in nonces, f"{what}: inline script without nonce"


@pytest.fixture
def resource() -> Any:
    return ResourceFactory(slug="grafana", name="Grafana")


def test_requester_pages(plain_user: Any, resource: Any) -> None:
    for path in ("/", "/requests/new", "/preferences", "/signout", "/no-such-page"):
        check_headers(plain_user.get(path), path)
    response = plain_user.get("/")
    assert "'nonce-" in response["Content-Security-Policy"]  # the page's script runs by nonce
    check_headers(plain_user.get("/audit/export"), "403 page")


def test_admin_pages(superuser: Any, approver: Any, resource: Any) -> None:
    for path in (
        "/admin/",
        "/admin/access/accessrequest/",
        "/admin/access/grant/",
        "/admin/access/resource/",
        f"/admin/access/resource/{resource.pk}/change/",
        "/admin/access/resource/add/",
        "/admin/audit/auditevent/",
        "/admin/access/grant/access-now/",
        "/admin/accounts/user/",
    ):
        check_headers(superuser.get(path), path)
    check_headers(approver.get("/admin/audit/auditevent/"), "admin 403")


def test_exports_and_reports(auditor: Any) -> None:
    check_headers(auditor.get("/audit/export"), "export form")
    check_headers(auditor.post("/audit/export", {"format": "csv"}), "export download")
    check_headers(auditor.get("/admin/audit/auditevent/export/?format=csv"), "admin export form")
    report = auditor.post("/admin/access/grant/access-now/", {"resource": "", "download": "csv"})
    check_headers(report, "report download")


def test_identity_error_pages() -> None:
    response = Client().get("/")  # no assertion at all
    assert response.status_code == 403
    check_headers(response, "assertion rejected")
    response = Client().get("/", HTTP_X_POMERIUM_JWT_ASSERTION="garbage")
    check_headers(response, "malformed assertion")


def test_health_is_left_alone() -> None:
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.get("Cache-Control") != "private, no-store"
