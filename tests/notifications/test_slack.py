"""Slack: the JSON a real HTTP endpoint receives, and how its failures are retried and recorded.

The webhook URL is a credential: it must never show up in a row, an error or a log line.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.core import serializers

from apps.access import services
from apps.access.models import AccessRequest, Resource
from apps.access.states import GrantState, RequestState
from apps.notifications import services as outbox
from apps.notifications import slack
from apps.notifications.models import Channel, Notification, Status
from tests.notifications.conftest import SlackServer

pytestmark = pytest.mark.django_db

ADMIN_REQ = "https://jit.example.com/admin/access/accessrequest/{}/change/"


@pytest.fixture
def hooked(resource: Resource, slack_server: SlackServer) -> Resource:
    resource.slack_webhook_url = slack_server.webhook_url
    resource.save()
    return resource


def slack_row() -> Notification:
    return Notification.objects.get(channel=Channel.SLACK)


def assert_no_secret(row: Notification, server: SlackServer, caplog: Any) -> None:
    secret = "s3cr3tT0kenXYZ"
    assert secret not in serializers.serialize("json", [row])
    assert secret not in caplog.text
    assert server.webhook_url not in caplog.text


def submit(
    people: dict[str, Any], resource: Resource, after_commit: Any, **kw: Any
) -> AccessRequest:
    kw.setdefault("justification", "Debugging <!channel> & checkout")
    with after_commit():
        return services.submit_request(
            requester=people["alice"], resource=resource, duration_minutes=120, **kw
        )


def test_new_request_posts_text_and_blocks_with_a_link_to_the_portal(
    people: dict[str, Any], hooked: Resource, slack_server: SlackServer, after_commit: Any
) -> None:
    req = submit(people, hooked, after_commit, ticket="INC-7")

    (call,) = slack_server.received
    assert call["path"] == "/services/T0001/B0001/s3cr3tT0kenXYZ"
    assert call["content_type"] == "application/json"
    link = ADMIN_REQ.format(req.pk)
    summary = f"Request #{req.pk}: Alice asks for access to Grafana admin"
    assert call["json"] == {
        "text": f"{summary} {link}",
        "blocks": [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    # User text is escaped: no @channel ping, no fake links.
                    "text": f"*{summary}*\nDuration: 2 hours\n"
                    "Why: Debugging &lt;!channel&gt; &amp; checkout\nTicket: INC-7",
                },
            },
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Review in the portal"},
                        "url": link,
                    }
                ],
            },
        ],
    }
    row = slack_row()
    assert (row.recipient, row.status, row.payload) == ("slack:grafana", Status.SENT, call["json"])


def test_decision_and_break_glass_are_posted(
    people: dict[str, Any], hooked: Resource, slack_server: SlackServer, after_commit: Any
) -> None:
    req = submit(people, hooked, after_commit)
    with after_commit():
        services.reject_request(req, approver=people["bob"], reason="Use the <read-only> role")
    with after_commit():
        grant = services.break_glass(
            user=people["alice"],
            resource=hooked,
            duration_minutes=30,
            justification="Production is down, pager INC-42",
        )

    texts = [call["json"]["text"] for call in slack_server.received]
    assert texts == [
        f"Request #{req.pk}: Alice asks for access to Grafana admin {ADMIN_REQ.format(req.pk)}",
        f"Request #{req.pk} of Alice for Grafana admin: rejected by Bob {ADMIN_REQ.format(req.pk)}",
        ":rotating_light: Break-glass: Alice activated emergency access to Grafana admin "
        f"https://jit.example.com/admin/access/grant/{grant.pk}/change/",
    ]
    decision = slack_server.received[1]["json"]["blocks"][0]["text"]["text"]
    assert "Reason: Use the &lt;read-only&gt; role" in decision
    glass = slack_server.received[2]["json"]["blocks"][0]["text"]["text"]
    assert "Why: Production is down, pager INC-42" in glass
    assert "Needs review by an approver." in glass


def test_slack_500_is_retried_then_recorded_without_the_url(
    people: dict[str, Any],
    hooked: Resource,
    slack_server: SlackServer,
    after_commit: Any,
    caplog: Any,
) -> None:
    caplog.set_level(logging.DEBUG)
    slack_server.status, slack_server.body = 500, "internal error at {path}"
    req = submit(people, hooked, after_commit)

    req.refresh_from_db()
    assert req.state == RequestState.PENDING  # the request is what it was
    row = slack_row()
    assert (row.status, row.attempts) == (Status.PENDING, 1)
    for _ in range(4):
        row.refresh_from_db()
        outbox.deliver(row.pk, now=row.next_attempt_at)
    row.refresh_from_db()
    assert (row.status, row.attempts) == (Status.FAILED, 5)
    # Slack's answer is kept, with the echoed URL path masked.
    assert row.last_error == (
        "gave up after 5 attempts: Slack answered HTTP 500: internal error at /[webhook]"
    )
    assert len(slack_server.received) == 5
    assert_no_secret(row, slack_server, caplog)
    # urllib3's DEBUG request line is still there, with the path masked.
    assert '"POST /services/[webhook] HTTP/1.1" 500' in caplog.text
    # The emails of the same event went out regardless.
    assert set(
        Notification.objects.filter(channel=Channel.EMAIL).values_list("status", flat=True)
    ) == {Status.SENT}


def test_slack_4xx_fails_at_once(
    people: dict[str, Any],
    hooked: Resource,
    slack_server: SlackServer,
    after_commit: Any,
    caplog: Any,
) -> None:
    slack_server.status, slack_server.body = 404, "no_service"
    submit(people, hooked, after_commit)
    row = slack_row()
    assert (row.status, row.attempts, row.last_error) == (
        Status.FAILED,
        1,
        "Slack answered HTTP 404: no_service",
    )
    assert_no_secret(row, slack_server, caplog)


def test_slack_429_waits_at_least_retry_after(
    people: dict[str, Any], hooked: Resource, slack_server: SlackServer, after_commit: Any
) -> None:
    slack_server.status, slack_server.body = 429, "rate_limited"
    slack_server.headers = {"Retry-After": "300"}
    submit(people, hooked, after_commit)
    row = slack_row()
    assert (row.status, row.last_error) == (Status.PENDING, "Slack answered HTTP 429: rate_limited")
    assert round((row.next_attempt_at - row.created_at).total_seconds()) == 300


def test_slack_timeout_and_refused_connection_are_transient_and_name_no_url(
    people: dict[str, Any],
    hooked: Resource,
    slack_server: SlackServer,
    after_commit: Any,
    monkeypatch: Any,
    caplog: Any,
) -> None:
    monkeypatch.setattr(slack, "TIMEOUT_SECONDS", 0.2)
    slack_server.delay = 0.6
    submit(people, hooked, after_commit)
    row = slack_row()
    assert (row.status, row.last_error) == (Status.PENDING, "Slack did not answer within 0.2 s")
    assert_no_secret(row, slack_server, caplog)

    slack_server.stop()  # nobody listens any more
    outbox.deliver(row.pk, now=row.next_attempt_at)
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_error) == (
        Status.PENDING,
        2,
        "could not connect to Slack",
    )
    assert_no_secret(row, slack_server, caplog)


def test_removed_webhook_fails_the_pending_message_permanently(
    people: dict[str, Any], hooked: Resource, slack_server: SlackServer, after_commit: Any
) -> None:
    slack_server.status = 503
    submit(people, hooked, after_commit)
    hooked.slack_webhook_url = ""
    hooked.save()
    row = slack_row()
    outbox.deliver(row.pk, now=row.next_attempt_at)
    row.refresh_from_db()
    assert (row.status, row.last_error) == (
        Status.FAILED,
        "the resource has no Slack webhook any more",
    )


def test_no_webhook_no_slack_message(
    people: dict[str, Any], resource: Resource, after_commit: Any
) -> None:
    req = submit(people, resource, after_commit)
    with after_commit():
        grant = services.approve_request(req, approver=people["bob"])
    assert grant is not None and grant.state == GrantState.ACTIVE
    assert not Notification.objects.filter(channel=Channel.SLACK).exists()


def test_redact_masks_the_url_and_its_path() -> None:
    url = "https://hooks.slack.com/services/T1/B2/XYZ"
    assert slack.redact(f"POST {url} failed", url) == "POST [webhook] failed"
    assert slack.redact("GET /services/T1/B2/XYZ 500", url) == "GET /[webhook] 500"
