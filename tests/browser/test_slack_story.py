"""The Slack story in a real browser, on the real demo stack (``make demo``'s processes).

Alice asks for the Incident console in the portal; the portal posts the request to the
Slack stand-in's channel; Bob opens the demo's "Slack" page and clicks Approve; the
stand-in signs the click and sends it to the portal as Slack would; the portal asks Slack
who Bob is, approves as Bob, and updates the message. Dave, on call in PagerDuty (the
on-call stand-in), gets the same resource at once.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import DemoStack
from tests.browser.test_demo_story import Story

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def slack_page(page: Any, stack: DemoStack, member: str) -> None:
    page.goto(f"http://127.0.0.1:{stack.ports.slack}/?as={member}")


def message_of(page: Any, request_id: str) -> Any:
    return page.locator("div.msg", has_text=f"Request #{request_id}:")


def test_bob_approves_from_slack(page: Any, demo_stack: DemoStack, artifacts: Path) -> None:
    story = Story(page, demo_stack, artifacts)
    story.sign_in("alice", "Alice Requester")
    story.open("/requests/new?resource=incident-console")
    page.select_option("#id_duration", label="1 hour")
    page.fill("#id_justification", f"Look at the paging noise ({time.strftime('%H%M%S')})")
    page.click("button:has-text('Send request')")
    page.wait_for_url(re.compile(r"/requests/\d+$"))
    request_id = page.url.rsplit("/", 1)[1]
    detail = story.text()
    assert "Who can approve now" in detail and "Bob Approver" in detail, detail
    story.shot("slack-alice-pending")

    # The worker posts it to Slack (the outbox); Bob sees it with its buttons.
    slack_page(page, demo_stack, "U0BOB")
    message = message_of(page, request_id)
    for _ in range(60):
        if message.count():
            break
        time.sleep(0.5)
        slack_page(page, demo_stack, "U0BOB")
    assert message.count() == 1, page.inner_text("body")
    assert "Waiting for approval" in message.inner_text()
    story.shot("slack-bob-sees-request")
    message.locator("button:has-text('Approve')").click()
    page.wait_for_load_state()
    assert f"You approved request #{request_id}" in page.inner_text("body")

    # The message follows: approved by Bob, no buttons left.
    for _ in range(60):
        slack_page(page, demo_stack, "U0BOB")
        if "Approved by Bob Approver" in message_of(page, request_id).inner_text():
            break
        time.sleep(0.5)
    updated = message_of(page, request_id)
    assert "Approved by Bob Approver" in updated.inner_text(), updated.inner_text()
    assert updated.locator("button").count() == 0
    story.shot("slack-approved")

    # In the portal the request is approved, by Bob.
    story.open(f"/requests/{request_id}")  # still signed in as Alice there
    assert "by Bob Approver" in story.text()


def test_dave_on_call_in_pagerduty_gets_it_at_once(
    page: Any, demo_stack: DemoStack, artifacts: Path
) -> None:
    story = Story(page, demo_stack, artifacts)
    story.sign_in("dave", "Dave On-call")
    story.open("/requests/new?resource=incident-console")
    page.select_option("#id_duration", label="1 hour")
    page.fill("#id_justification", "Paged: disk alerts on the primary")
    page.click("button:has-text('Send request')")
    page.wait_for_url(re.compile(r"/requests/\d+$"))
    text = story.text()
    assert "Outcome\nAuto-approved" in text, text
    assert "was approved automatically" in text
    story.shot("slack-dave-on-call")
