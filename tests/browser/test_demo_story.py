"""The demo story end to end, in a real browser against the real demo stack.

README "Quick start": Alice asks for Grafana admin, Bob approves it in the admin, the grant
goes live in Pomerium (the Zero simulator's evaluator allows Alice), Bob revokes it (the
evaluator denies her again), Dave breaks glass on Billing admin (granted at once, waiting
for review), and Carol downloads the audit trail as CSV. Every step leaves a screenshot in
``test-artifacts/browser/``.

Waits for the asynchronous parts (Celery sync to Zero) are bounded polls that fail with
what the page or the evaluator said; nothing asserts how long anything took.
"""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import DemoStack

pytestmark = [pytest.mark.browser, pytest.mark.slow]

POLICY = "jit-grafana-admin"  # the Zero policy of the seeded "grafana-admin" resource
ALICE = "alice@example.com"
# The audit export's documented column order (apps/audit/export.py), first columns.
DOCUMENTED_COLUMNS = [
    "seq",
    "created_at",
    "actor_id",
    "actor_label",
    "action",
    "target_type",
    "target_id",
    "target_repr",
    "resource_slug",
]
POLL_SECONDS = 30.0


class Story:
    """One browser tab walking the story, with numbered screenshots."""

    def __init__(self, page: Any, stack: DemoStack, artifacts: Path) -> None:
        self.page = page
        self.stack = stack
        self.artifacts = artifacts
        self.shots: list[Path] = []

    def open(self, path: str) -> None:
        self.page.goto(self.stack.url + path)

    def shot(self, name: str) -> None:
        path = self.artifacts / f"{len(self.shots) + 1:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        self.shots.append(path)

    def text(self) -> str:
        return str(self.page.inner_text("body"))

    def sign_in(self, key: str, name: str) -> None:
        """Pick ``key`` on the proxy's sign-in page; the portal then greets ``name``."""
        self.open("/.pomerium/sign_in")
        self.page.click(f"button[data-identity={key}]")
        self.page.wait_for_url(self.stack.url + "/")
        who = self.page.locator("header .who")
        assert who.inner_text() == name, self.text()

    def sign_out(self) -> None:
        """The page's own sign-out: the portal's "Sign out" button or the admin's "Log out".

        Both end the portal session and go on to Pomerium's (here: the proxy's) sign-out.
        """
        self.page.click("header button:text-is('Sign out'), #logout-form button")
        self.page.wait_for_url(re.compile(r"/\.pomerium/sign_in"))

    def switch_to(self, key: str, name: str) -> None:
        self.sign_out()
        self.sign_in(key, name)

    def run_admin_action(self, changelist: str, row_texts: list[str], action: str) -> None:
        """Tick the one changelist row showing all ``row_texts`` (in the row or the detail
        line under it) and pick ``action``."""
        self.open(changelist)
        rows = self.page.locator("#result_list tbody tr:not(.detail-row)")
        shown = rows.evaluate_all(
            "rows => rows.map(r => r.innerText + ' ' + (r.nextElementSibling"
            " && r.nextElementSibling.classList.contains('detail-row')"
            " ? r.nextElementSibling.innerText : ''))"
        )
        matching = [i for i, text in enumerate(shown) if all(t in text for t in row_texts)]
        assert len(matching) == 1, f"want one row with {row_texts} in:\n{self.text()}"
        rows.nth(matching[0]).locator("input.action-select").check()
        self.page.select_option("select[name=action]", action)
        self.page.click("button[name=index]")
        # The objects as a table, or as the approver's briefs (apps/access/briefs.py).
        self.page.wait_for_selector("#action-objects, #briefs")

    def confirm_admin_action(self, button: str) -> str:
        self.page.click(f"input[type=submit][name=apply][value='{button}']")
        message = self.page.locator("ul.messagelist li")
        message.first.wait_for()
        return str(message.first.inner_text())

    def reload_until(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + POLL_SECONDS
        while not condition():
            if time.monotonic() > deadline:
                pytest.fail(
                    f"{what}: not seen within {POLL_SECONDS:.0f} s of reloading.\n"
                    f"Page:\n{self.text()}\n\nStack output (tail):\n{self.stack.log_tail()}"
                )
            self.page.wait_for_timeout(1000)
            self.page.reload()


def evaluator_until(stack: DemoStack, allow: bool) -> None:
    """Poll the simulator's evaluator until it answers ``allow`` for Alice."""
    deadline = time.monotonic() + POLL_SECONDS
    while True:
        status, body = stack.evaluate(POLICY, ALICE)
        if status == 200 and isinstance(body, dict) and body.get("allow") is allow:
            return
        if time.monotonic() > deadline:
            pytest.fail(
                f"the evaluator never answered allow={allow} for {ALICE} on {POLICY} within "
                f"{POLL_SECONDS:.0f} s; last answer: HTTP {status} {body!r}\n\n"
                f"Stack output (tail):\n{stack.log_tail()}"
            )
        time.sleep(0.5)


def rows_with(rows: list[dict[str, str]], action: str, **match: str) -> list[dict[str, str]]:
    """CSV rows with ``action`` whose columns equal ``match``; ``details`` is a substring."""
    found = []
    for row in rows:
        if row["action"] != action:
            continue
        details = match.get("details")
        if details is not None and details not in row["details"]:
            continue
        if all(row[k] == v for k, v in match.items() if k != "details"):
            found.append(row)
    return found


def test_demo_story(page: Any, demo_stack: DemoStack, artifacts: Path) -> None:
    story = Story(page, demo_stack, artifacts)
    run = time.strftime("%H%M%S")  # tells this run's words apart in the audit trail
    justification = f"Tune the checkout latency alerts (browser story {run})"
    revoke_reason = f"Alerts tuned, access no longer needed ({run})"
    emergency = f"Payments are failing, pause the dunning run ({run})"

    # 1. Alice signs in on the dev sign-in proxy; the dashboard greets her.
    story.sign_in("alice", "Alice Requester")
    assert "My access" in story.text()
    story.shot("alice-dashboard")

    # 2. She asks for Grafana admin for an hour.
    story.open("/requests/new?resource=grafana-admin")
    assert page.input_value("#id_resource") == "grafana-admin"
    # Read-only would be approved at once for her (and is offered first); she needs full.
    assert page.input_value("#id_level") == "read-only"
    page.select_option("#id_level", "full")
    page.select_option("#id_duration", label="1 hour")
    page.fill("#id_justification", justification)
    story.shot("alice-request-form")
    page.click("button:has-text('Send request')")
    page.wait_for_url(re.compile(r"/requests/\d+$"))
    request_id = page.url.rsplit("/", 1)[1]
    detail = story.text()
    assert "waiting for approval" in detail, detail
    assert page.locator("#request-outcome").inner_text() == "Waiting for approval", detail
    story.shot("alice-request-pending")

    # 3. Bob approves it in the admin, through the confirmation page.
    story.switch_to("bob", "Bob Approver")
    story.run_admin_action(
        "/admin/access/accessrequest/?state__exact=pending",
        [ALICE, "Grafana admin", justification[:40]],
        "approve_selected",
    )
    assert justification in story.text()
    story.shot("bob-approve-confirm")
    message = story.confirm_admin_action("Approve")
    assert message == "1 approved", story.text()
    story.shot("bob-approved")

    # 4. Alice sees she can get in now; the simulator's evaluator lets her in.
    story.switch_to("alice", "Alice Requester")
    story.open(f"/requests/{request_id}")
    access = page.locator("#grant-access")
    story.reload_until(lambda: access.inner_text().startswith("Allowed now, until "), "Allowed now")
    assert page.locator(".badge.access-allowed").count() == 1, story.text()
    story.shot("alice-grant-live")
    status, body = demo_stack.evaluate(POLICY, ALICE)
    assert status == 200 and isinstance(body, dict) and body.get("allow") is True, (
        f"the grant is live in the portal, but the evaluator says HTTP {status} {body!r}"
    )
    story.open("/")
    assert "Allowed now, until " in page.locator("table.grants").inner_text(), story.text()
    story.shot("alice-dashboard-live")

    # 5. Bob revokes it; the evaluator denies Alice again.
    story.switch_to("bob", "Bob Approver")
    story.run_admin_action(
        "/admin/access/grant/?state__exact=active",
        [ALICE, "Grafana admin"],
        "revoke_selected",
    )
    page.fill("#id_reason", revoke_reason)
    story.shot("bob-revoke-confirm")
    message = story.confirm_admin_action("Revoke")
    assert message == "1 revoked", story.text()
    story.shot("bob-revoked")
    evaluator_until(demo_stack, allow=False)

    # Alice's request says what became of it.
    story.switch_to("alice", "Alice Requester")
    story.open(f"/requests/{request_id}")
    outcome = page.locator("#request-outcome").inner_text()
    assert re.fullmatch(
        r"Approved → revoked by bob@example\.com at \d{2}:\d{2} [A-Z]{2,5}|"
        r"Approved → revoked by bob@example\.com at \d{2}:\d{2} [+-]\d{2}",
        outcome,
    ), outcome
    story.shot("alice-request-revoked")

    # 6. Dave breaks glass on Billing admin: granted at once, flagged for review.
    story.switch_to("dave", "Dave On-call")
    page.click("a.button:has-text('Break glass: Billing admin')")
    page.wait_for_url(demo_stack.url + "/break-glass/billing-admin")
    page.fill("#id_justification", emergency)
    story.shot("dave-break-glass-form")
    page.click("button:has-text('Activate emergency access')")
    page.wait_for_url(re.compile(r"/requests/\d+$"))
    granted = story.text()
    assert "Break-glass access to Billing admin is active" in granted, granted
    grant_facts = page.locator("dl.facts").nth(1)
    assert page.locator("#request-outcome").inner_text() == "Break-glass", granted
    answer = grant_facts.locator("#grant-access").inner_text()
    assert answer == "Waiting for Pomerium" or answer.startswith("Allowed now, until "), granted
    assert grant_facts.locator(".badge.break_glass").count() == 1, granted
    story.shot("dave-break-glass-granted")

    story.switch_to("bob", "Bob Approver")
    story.open("/admin/access/grant/?needs_review=yes&state__exact=active")
    flagged = page.locator("#result_list tbody tr").filter(has_text="dave@example.com")
    flagged = flagged.filter(has_text="Billing admin")
    assert flagged.count() == 1, story.text()
    assert "BREAK-GLASS · needs review" in flagged.inner_text(), story.text()
    story.shot("bob-needs-review")

    # 7. Carol, the auditor, downloads the trail as CSV.
    story.switch_to("carol", "Carol Auditor")
    page.click("header >> text=Audit export")
    page.wait_for_url(demo_stack.url + "/audit/export")
    page.check("input[name=format][value=csv]")
    story.shot("carol-audit-export")
    with page.expect_download() as download_info:
        page.click("button:has-text('Download')")
    download = download_info.value
    saved = artifacts / "audit.csv"
    download.save_as(str(saved))
    assert download.suggested_filename.endswith(".csv"), download.suggested_filename

    text = saved.read_bytes().decode("utf-8")
    assert text.startswith("\ufeff"), "the CSV starts with a byte-order mark for spreadsheets"
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    header = list(reader.fieldnames or [])
    assert header[: len(DOCUMENTED_COLUMNS)] == DOCUMENTED_COLUMNS, header
    rows = list(reader)
    approved = rows_with(
        rows,
        "request.approved",
        actor_label="bob@example.com",
        target_id=request_id,
        resource_slug="grafana-admin",
    )
    revoked = rows_with(
        rows,
        "grant.revoked",
        actor_label="bob@example.com",
        resource_slug="grafana-admin",
        details=revoke_reason,
    )
    broke_glass = rows_with(
        rows,
        "grant.break_glass",
        actor_label="dave@example.com",
        resource_slug="billing-admin",
        details=emergency,
    )
    assert (len(approved), len(revoked), len(broke_glass)) == (1, 1, 1), (
        f"want this run's approval, revocation and break-glass in {saved}; "
        f"found {len(approved)}, {len(revoked)}, {len(broke_glass)}"
    )
    # Actions taken in the browser carry the web request's id, linking log lines and trail.
    assert all(row["request_id"] for row in (*approved, *revoked, *broke_glass)), saved
    print("\nscreenshots:", *(p.relative_to(artifacts.parent.parent) for p in story.shots))


def test_the_dashboard_updates_without_a_reload_after_an_approval_elsewhere(
    browser: Any, demo_stack: DemoStack, artifacts: Path
) -> None:
    """Erin watches her dashboard while Bob approves in his own session: it goes from
    waiting for approval to Allowed now (through Waiting for Pomerium), with no reload.
    (Erin holds nothing on Grafana admin in the seeded story; Alice holds Billing admin.)"""
    contexts = [
        browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
        for _ in range(2)
    ]
    try:
        erin, bob = (Story(c.new_page(), demo_stack, artifacts) for c in contexts)
        erin.sign_in("erin", "Erin Approver")
        erin.open("/requests/new?resource=grafana-admin")
        erin.page.select_option("#id_level", "full")
        erin.page.fill("#id_justification", "Review the alert routing with the SRE team")
        erin.page.click("button:has-text('Send request')")
        erin.page.wait_for_url(re.compile(r"/requests/\d+$"))
        request_id = erin.page.url.rsplit("/", 1)[1]
        erin.open("/")
        row = erin.page.locator(f"tr[data-request='{request_id}']")
        assert row.locator("td.outcome").inner_text() == "Waiting for approval", erin.text()
        # A mark that a reload would wipe out.
        erin.page.evaluate("window.jitNoReload = true")

        bob.sign_in("bob", "Bob Approver")
        bob.run_admin_action(
            "/admin/access/accessrequest/?state__exact=pending",
            ["erin@example.com", "Grafana admin"],
            "approve_selected",
        )
        assert bob.confirm_admin_action("Approve") == "1 approved", bob.text()

        allowed = erin.page.locator("table.grants .badge.access-allowed")
        allowed.wait_for(timeout=POLL_SECONDS * 1000)
        assert allowed.inner_text().startswith("Allowed now, until "), erin.text()
        assert erin.page.evaluate("window.jitNoReload") is True, "the page was reloaded"
        assert row.locator("td.outcome").inner_text() == "Approved", erin.text()
        erin.shot("erin-dashboard-updated-without-reload")
        # Nothing is pending any more: the page stops asking.
        assert erin.page.locator("[data-watch]").get_attribute("data-pending") == "false"
    finally:
        for context in contexts:
            context.close()


def test_a_grant_on_the_core_target_says_jitportal_closes_it(
    page: Any, demo_stack: DemoStack, artifacts: Path
) -> None:
    """README step 8, as a person does it: Alice asks for the Edge router console (on the
    Pomerium Core target ``edge``), Bob approves, and her page says *Allowed now* only once
    Core lets her in, and that jitportal, not Pomerium, closes the rule at the end."""
    story = Story(page, demo_stack, artifacts)
    story.sign_in("alice", "Alice Requester")
    status, body = demo_stack.core_evaluate("edge-console", ALICE)
    assert status == 200 and isinstance(body, dict) and body.get("allow") is False, body

    story.open("/requests/new?resource=edge-console")
    page.select_option("#id_duration", label="30 minutes")
    page.fill("#id_justification", "Rotate the edge routers' TLS certificates")
    page.click("button:has-text('Send request')")
    page.wait_for_url(re.compile(r"/requests/\d+$"))
    request_id = page.url.rsplit("/", 1)[1]

    story.switch_to("bob", "Bob Approver")
    story.run_admin_action(
        "/admin/access/accessrequest/?state__exact=pending",
        [ALICE, "Edge router console"],
        "approve_selected",
    )
    assert story.confirm_admin_action("Approve") == "1 approved", story.text()

    story.switch_to("alice", "Alice Requester")
    story.open(f"/requests/{request_id}")
    access = page.locator("#grant-access")
    story.reload_until(lambda: access.inner_text().startswith("Allowed now, until "), "Allowed now")
    status, body = demo_stack.core_evaluate("edge-console", ALICE)
    assert status == 200 and isinstance(body, dict) and body.get("allow") is True, (
        f"the page says Allowed now, but Core's evaluator says HTTP {status} {body!r}"
    )
    closing = page.locator("#grant-closing").inner_text()
    assert closing.startswith("Closed by jitportal at "), story.text()
    assert "Closes by itself in Pomerium" not in story.text()
    story.shot("alice-edge-grant-closed-by-jitportal")
