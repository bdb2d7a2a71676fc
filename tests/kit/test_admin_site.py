"""The admin site builds its app list only for pages that show it (``PortalAdminSite``)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin

from apps.kit.admin_site import PortalAdminSite

pytestmark = pytest.mark.django_db


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    calls: list[str | None] = []
    original = PortalAdminSite._build_app_dict

    def counted(self: Any, request: Any, label: str | None = None) -> Any:
        calls.append(label)
        return original(self, request, label)

    monkeypatch.setattr(PortalAdminSite, "_build_app_dict", counted)
    return calls


def test_the_default_site_is_the_portals() -> None:
    assert isinstance(admin.site, PortalAdminSite)


def test_pages_without_the_sidebar_build_no_app_list(approver: Any, builds: list[Any]) -> None:
    page = approver.get("/admin/access/accessrequest/")
    assert page.status_code == 200
    assert 'id="nav-sidebar"' not in page.content.decode()
    assert builds == []


def test_the_sidebar_lists_what_the_reader_may_see(approver: Any, builds: list[Any]) -> None:
    page = approver.get("/admin/access/grant/")
    html = page.content.decode()
    assert page.status_code == 200 and 'id="nav-sidebar"' in html
    assert builds == [None]  # built once, for the sidebar
    assert 'href="/admin/access/grant/"' in html and 'href="/admin/access/resource/"' in html
    # A model the approver may not see is not listed.
    assert "/admin/audit/auditevent/" not in html


def test_the_index_and_an_app_page_list_their_apps(approver: Any, builds: list[Any]) -> None:
    index = approver.get("/admin/")
    assert index.status_code == 200 and 'href="/admin/access/grant/"' in index.content.decode()
    assert builds == [None]
    assert approver.get("/admin/access/").status_code == 200
    assert approver.get("/admin/audit/").status_code == 404  # no model of it to see


def _sidebar(html: str) -> str:
    start = html.index('<button class="sticky toggle-nav-sidebar"')
    return html[start : html.index("</nav>", start) + len("</nav>")]


@pytest.mark.parametrize(
    "path",
    ["/admin/access/grant/", "/admin/access/resource/", "/admin/access/grant/?state__exact=x"],
)
def test_the_sidebar_is_djangos_for_each_page(approver: Any, path: str) -> None:
    """The sidebar rendered once per apps, page and language is the include Django renders,
    its current page marked, on the first view and the next."""
    from django.template.loader import render_to_string

    for _ in range(2):
        page = approver.get(path)
        assert page.status_code == 200
        html = page.content.decode()
        request = page.wsgi_request
        django = render_to_string(
            "admin/nav_sidebar.html",
            {"available_apps": page.context["available_apps"], "request": request},
        )
        assert f"\n          {django}\n        " in html
        assert _sidebar(html) == _sidebar(django)
        current = path.split("?")[0]
        assert f'<a href="{current}" aria-current="page">' in html


def test_the_sidebar_follows_the_reader(approver: Any, auditor: Any) -> None:
    """Two readers with other apps to see get their own sidebars."""
    theirs = auditor.get("/admin/audit/auditevent/").content.decode()
    mine = approver.get("/admin/access/grant/").content.decode()
    assert "/admin/audit/auditevent/" in _sidebar(theirs)
    assert "/admin/audit/auditevent/" not in _sidebar(mine)
