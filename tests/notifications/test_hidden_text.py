"""Emails and Slack messages show hidden and direction-changing characters escaped, class by
class: a display name from the identity provider, and a justification stored before the
portal refused them, reach every recipient as ``[U+202E]``, never raw."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail

from apps.access import services
from apps.access.models import Resource
from apps.notifications import plans
from apps.notifications.models import Channel, Notification
from tests.factories import AccessRequestFactory
from tests.notifications.conftest import SlackServer
from tests.support.hidden_text import CLASS_IDS, CLASSES, spoof

pytestmark = pytest.mark.django_db


def assert_not_raw(text: str, chars: str, where: str) -> None:
    raw = [f"U+{ord(c):04X}" for c in chars if c in text]
    assert raw == [], f"{where}: shown raw: {raw}"


def assert_revealed(text: str, chars: str, where: str) -> None:
    assert_not_raw(text, chars, where)
    for char in chars:
        assert f"[U+{ord(char):04X}]" in text, (where, f"U+{ord(char):04X}")


@pytest.mark.parametrize("name", CLASS_IDS)
def test_emails_and_slack_show_them_escaped(
    people: dict[str, Any],
    resource: Resource,
    slack_server: SlackServer,
    after_commit: Any,
    name: str,
) -> None:
    chars = CLASSES[name]
    resource.slack_webhook_url = slack_server.webhook_url
    resource.save()
    alice = people["alice"]
    alice.display_name = f"Alice {chars}"
    alice.save()

    with after_commit():
        req = services.submit_request(
            requester=alice, resource=resource, duration_minutes=120, justification="INC-42 now"
        )
    with after_commit():
        services.reject_request(req, approver=people["bob"], reason="Use the read-only role")

    assert mail.outbox, "no email sent"
    for message in mail.outbox:
        parts = [message.subject, message.body, *(c[0] for c in message.alternatives)]
        for part in parts:
            assert_not_raw(part, chars, f"email to {message.to}")
    # The approvers' email names the requester in its text and HTML parts.
    to_approvers = next(m for m in mail.outbox if m.to == ["bob@example.com"])
    assert_revealed(to_approvers.body, chars, "text part")
    assert_revealed(to_approvers.alternatives[0][0], chars, "HTML part")
    assert slack_server.received, "nothing posted to Slack"
    for call in slack_server.received:
        assert_revealed(str(call["json"]), chars, "Slack")
    rows = Notification.objects.filter(channel=Channel.SLACK)
    assert rows.exists() and all("[U+" in row.body for row in rows)


@pytest.mark.parametrize("name", CLASS_IDS)
def test_a_stored_justification_is_shown_escaped_to_approvers(
    people: dict[str, Any], resource: Resource, slack_server: SlackServer, name: str
) -> None:
    chars = CLASSES[name]
    resource.slack_webhook_url = slack_server.webhook_url
    resource.save()
    req = AccessRequestFactory(
        requester=people["alice"], resource=resource, justification=spoof(chars)
    )

    messages = plans.request_submitted(request_id=req.pk)

    assert {m.channel for m in messages} == {Channel.EMAIL, Channel.SLACK}
    for message in messages:
        for part in (message.body, message.body_html):
            if part:
                assert_revealed(part, chars, message.recipient)
