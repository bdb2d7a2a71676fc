"""Slack, end to end over HTTP: a request is posted with buttons, an approver's signed click
approves it as that person, and every decision wherever it was made updates the message."""

from __future__ import annotations

from typing import Any

import pytest

from apps.access import services
from apps.access.models import AccessRequest, Resource
from apps.access.states import RequestState
from apps.audit.models import AuditEvent
from apps.notifications.models import Notification, Status
from apps.slack.models import SlackMessage
from devtools.slacksim.simulator import SlackSimulator
from tests.slack.conftest import CHANNEL
from tests.slack.helpers import buttons, ephemerals, methods, only_message, text_of

pytestmark = pytest.mark.django_db(transaction=True)


def submit(people: dict[str, Any], resource: Resource, **kwargs: Any) -> AccessRequest:
    return services.submit_request(
        requester=people["alice"],
        resource=resource,
        duration_minutes=60,
        justification="Debugging the checkout outage",
        ticket="INC-42",
        **kwargs,
    )


def test_submit_posts_the_request_with_buttons(
    slack: SlackSimulator, people: dict[str, Any], resource: Resource
) -> None:
    req = submit(people, resource)
    message = only_message(slack)
    assert message["channel"] == CHANNEL
    text = text_of(message)
    assert f"Request #{req.pk}" in text and "Alice" in text and "Grafana admin" in text
    assert "1 hour" in text and "Debugging the checkout outage" in text and "INC-42" in text
    assert "Approvals:* 0 of 1" in text
    assert buttons(message) == ["jit_approve", "jit_reject"]
    stored = SlackMessage.objects.get(request=req)
    assert (stored.channel, stored.ts) == (CHANNEL, message["ts"])
    assert Notification.objects.get(channel="slackapp").status == Status.SENT


def test_an_approvers_click_approves_as_that_person_and_updates_the_message(
    slack: SlackSimulator, people: dict[str, Any], resource: Resource
) -> None:
    req = submit(people, resource)
    message = only_message(slack)
    result = slack.click(
        {"user": "U0BOB", "channel": CHANNEL, "ts": message["ts"], "action_id": "jit_approve"}
    )
    assert result["status"] == 200
    req.refresh_from_db()
    assert req.state == RequestState.APPROVED
    assert req.decided_by == people["bob"]
    entry = AuditEvent.objects.get(action="request.approved", target_id=str(req.pk))
    assert entry.actor_id == people["bob"].pk
    assert entry.details["channel"] == "slack"
    assert entry.details["slack"] == {
        "user_id": "U0BOB",
        "team_id": slack.workspace.team_id,
        "channel_id": CHANNEL,
        "message_ts": message["ts"],
    }
    updated = only_message(slack)
    assert "Approved by Bob" in text_of(updated)
    assert buttons(updated) == []
    assert ephemerals(slack, "U0BOB") == [
        f"You approved request #{req.pk}; access is being granted."
    ]


def test_an_admin_decision_updates_the_message(
    slack: SlackSimulator, people: dict[str, Any], resource: Resource
) -> None:
    req = submit(people, resource)
    services.reject_request(req, approver=people["erin"], reason="Use the read replica")
    updated = only_message(slack)
    assert "Rejected by Erin" in text_of(updated) and "Use the read replica" in text_of(updated)
    assert buttons(updated) == []
    assert methods(slack) == ["chat.postMessage", "chat.update"]
