"""The approver's pages in real Chromium, 1280 x 900, against a live portal on this test's
PostgreSQL database.

The browser sends a Pomerium assertion signed by the tests' JWKS server with every request,
as Pomerium would; the portal verifies it like any other. Screenshots go to
``test-artifacts/browser/approver-*.png``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from apps.access.models import AccessRequest, Grant
from tests.factories import AccessLevelFactory, AccessRequestFactory, ResourceFactory, UserFactory
from tests.support.jwks import SigningKey, claims_for, mint

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTH, HEIGHT = 1280, 900
LIST = "/admin/access/accessrequest/"


@pytest.fixture(scope="module", autouse=True)
def _orm_beside_playwright(django_db_setup: Any) -> Iterator[None]:
    """The test database exists before Chromium starts, and the test's own ORM calls work
    beside Playwright: its sync API runs an event loop in this thread, and Django refuses
    database calls from a thread with a running loop unless told they are plain blocking
    calls (they are: the live server answers the browser from its own thread)."""
    old = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if old is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = old


@pytest.fixture
def stage() -> dict[str, Any]:
    """A resource with three levels and a list of pending requests whose names are long, as
    they are in a real company."""
    resource = ResourceFactory(
        slug="grafana-prod",
        name="Grafana production (EU)",
        approvals_required=2,
        duration_choices=[60, 240, 480],
    )
    read = AccessLevelFactory(
        resource=resource,
        slug="read-only",
        name="Read-only",
        rank=0,
        criteria=[
            {"http_method": {"in": ["GET", "HEAD", "OPTIONS"]}},
            {"http_path": {"starts_with": "/api/"}},
        ],
    )
    operator = AccessLevelFactory(
        resource=resource,
        slug="operator",
        name="Operator",
        rank=1,
        criteria=[{"source_ip": "10.0.0.0/8"}],
    )
    AccessLevelFactory(resource=resource, slug="full", name="Full", rank=2)
    others = [
        ResourceFactory(slug=f"app-{i}", name=f"Internal application number {i}") for i in range(3)
    ]
    for i in range(30):
        person = UserFactory(
            email=f"firstname.lastname-{i:02d}@engineering.example.com",
            display_name=f"Firstname Lastname {i}",
        )
        AccessRequestFactory(
            requester=person,
            resource=others[i % 3],
            duration_minutes=480,
            ticket=f"INC-{1000 + i}",
            justification="Investigating the checkout latency regression " * 3,
        )
    alice = UserFactory(
        username="idp|alice", email="alice@example.com", display_name="Alice Example"
    )
    asked = AccessRequestFactory(
        requester=alice,
        resource=resource,
        level=operator,
        duration_minutes=240,
        justification="Restart the exporter for INC-77",
        ticket="INC-77",
    )
    return {"resource": resource, "read": read, "request": asked}


@pytest.fixture
def approver_tab(browser: Any, signing_key: SigningKey, live_server: Any) -> Iterator[Any]:
    """A tab of Bob, an approver, at 1280 x 900."""
    token = mint(
        signing_key,
        claims_for("idp|bob", "bob@example.com", groups=["approvers"], name="Bob", lifetime=3600),
    )
    context = browser.new_context(
        viewport={"width": WIDTH, "height": HEIGHT},
        locale="en-GB",
        extra_http_headers={"X-Pomerium-Jwt-Assertion": token},
    )
    context.set_default_timeout(20_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def inside_viewport(box: dict[str, float] | None) -> bool:
    return (
        box is not None
        and box["x"] >= 0
        and box["y"] >= 0
        and box["x"] + box["width"] <= WIDTH
        and box["y"] + box["height"] <= HEIGHT
    )


def test_the_requests_list_shows_state_and_approvals_without_scrolling(
    stage: dict[str, Any], approver_tab: Any, live_server: Any, artifacts: Path
) -> None:
    page = approver_tab
    page.goto(live_server.url + LIST)
    page.screenshot(path=str(artifacts / "approver-requests-list.png"))

    rows = page.locator("#result_list tbody tr:not(.detail-row)")
    assert rows.count() == 31
    # Every column of the first rows is on screen: nothing pushed off to the right.
    columns = ["state_badge", "requester", "resource", "level_shown", "window", "approvals"]
    for index in range(3):
        row = rows.nth(index)
        for column in columns:
            cell = row.locator(f"td.field-{column}")
            box = cell.bounding_box()
            assert inside_viewport(box), (index, column, box)
            assert cell.inner_text().strip(), (index, column)
    # Neither the page nor the table's own box scrolls sideways.
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH
    results = page.locator("#changelist .results")
    assert results.evaluate("box => box.scrollWidth <= box.clientWidth")
    # The detail line under a row carries the ticket and the justification's start.
    details = page.locator("#result_list tr.detail-row")
    assert details.count() == 31
    assert "ticket INC-77 · “Restart the exporter for INC-77”" in details.nth(0).inner_text()
    assert "Investigating the checkout latency" in details.nth(1).inner_text()


def test_the_approve_page_shows_the_level_and_what_it_allows(
    stage: dict[str, Any], approver_tab: Any, live_server: Any, artifacts: Path
) -> None:
    page = approver_tab
    req: AccessRequest = stage["request"]
    page.goto(live_server.url + LIST)
    page.check(f"input.action-select[value='{req.pk}']")
    page.select_option("select[name=action]", "approve_selected")
    page.click("button[name=index]")
    page.wait_for_selector(f"#brief-{req.pk}")
    page.screenshot(path=str(artifacts / "approver-approve-page.png"), full_page=True)

    level = page.locator(f"#brief-{req.pk} .brief-level")
    assert level.locator("strong").first.inner_text() == "Operator"
    assert "only from 10.0.0.0/8" in level.inner_text()
    assert inside_viewport(level.bounding_box())
    brief = page.locator(f"#brief-{req.pk}").inner_text()
    for text in ("Alice Example <alice@example.com>", "Restart the exporter for INC-77", "0 of 2"):
        assert text in brief, text
    # Lowering is a choice of the lower levels, each with what it allows.
    options = page.locator("select[name=level] option").all_inner_texts()
    assert options == [
        "Keep the level asked",
        "Read-only: only the HTTP methods GET, HEAD or OPTIONS (reading only: no changes); "
        "only paths starting with /api/",
    ]
    page.select_option("select[name=level]", "read-only")
    page.select_option("select[name=duration_choice]", "60")
    page.click("input[name=apply]")
    page.wait_for_url(live_server.url + LIST)
    assert "1 recorded (more approvals needed)" in page.inner_text("ul.messagelist")

    req.refresh_from_db()
    assert (req.approved_level, req.approved_duration_minutes) == (stage["read"], 60)
    assert not Grant.objects.filter(request=req).exists()  # one of two approvals


def test_the_requester_filter_is_searched_as_the_approver_types(
    stage: dict[str, Any], approver_tab: Any, live_server: Any, artifacts: Path
) -> None:
    """Issue 24: the filter lists nobody until asked; typing part of a name offers the
    people in the approver's rows, choosing one filters the list, clearing it shows all."""
    page = approver_tab
    page.goto(live_server.url + LIST + "?o=1")
    box = page.locator("details[data-filter-title=requester]")
    assert box.locator("li").count() == 0  # no list of people
    box.locator(".select2-selection").click()
    page.locator(".select2-search__field").fill("lastname-07")
    # The search answers after a short pause in typing: one person then.
    option = page.locator(".select2-results__option", has_text="lastname-07")
    option.wait_for()
    expect(page.locator(".select2-results__option:not(.loading-results)")).to_have_count(1)
    page.screenshot(path=str(artifacts / "approver-requester-search.png"))
    with page.expect_navigation():
        option.click()
    assert "requester__id__exact=" in page.url and "o=1" in page.url
    rows = page.locator("#result_list tbody tr:not(.detail-row)")
    assert rows.count() == 1
    assert "firstname.lastname-07@" in rows.first.inner_text()
    chosen = page.locator("details[data-filter-title=requester] .select2-selection__rendered")
    assert "firstname.lastname-07@" in chosen.inner_text()
    with page.expect_navigation():
        page.locator("details[data-filter-title=requester] .select2-selection__clear").click()
    assert "requester__id__exact" not in page.url
    assert rows.count() == 31
