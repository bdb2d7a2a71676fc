"""Reject asks for a reason in a dialog (views.open) and rejects on its submission; a quorum
shows its progress in the message; Slack's rate limit is retried by the outbox."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from apps.access import services
from apps.access.models import AccessRequest, Approval, Resource
from apps.access.states import RequestState
from apps.accounts.roles import claim_group_name
from apps.audit.models import AuditEvent
from apps.notifications import services as outbox
from apps.notifications.models import Notification, Status
from devtools.slacksim.simulator import SlackSimulator
from tests.slack.conftest import CHANNEL
from tests.slack.helpers import buttons, ephemerals, methods, only_message, text_of

pytestmark = pytest.mark.django_db(transaction=True)


def submit(people: dict[str, Any], resource: Resource) -> AccessRequest:
    return services.submit_request(
        requester=people["alice"],
        resource=resource,
        duration_minutes=60,
        justification="Debugging the checkout outage",
    )


def press(slack: SlackSimulator, user: str, action: str) -> dict[str, Any]:
    message = only_message(slack)
    return slack.click({"user": user, "channel": CHANNEL, "ts": message["ts"], "action_id": action})


def test_reject_opens_a_dialog_and_rejects_with_the_reason_given(
    slack: SlackSimulator, people: dict[str, Any], resource: Resource
) -> None:
    req = submit(people, resource)
    assert press(slack, "U0BOB", "jit_reject")["status"] == 200
    (view,) = slack.workspace.snapshot()["views"]
    assert view["user"] == "U0BOB" and view["view"]["callback_id"] == "jit_reject_reason"
    req.refresh_from_db()
    assert req.state == RequestState.PENDING  # nothing decided by the button itself

    empty = slack.submit({"view_id": view["id"], "values": {}})
    assert empty["json"] == {
        "response_action": "errors",
        "errors": {"reason": "Say why the request is rejected."},
    }
    req.refresh_from_db()
    assert req.state == RequestState.PENDING

    done = slack.submit({"view_id": view["id"], "values": {"reason": "Use the read replica"}})
    assert done["status"] == 200 and done["json"] == {}
    req.refresh_from_db()
    assert (req.state, req.decided_by, req.decision_reason) == (
        RequestState.REJECTED,
        people["bob"],
        "Use the read replica",
    )
    entry = AuditEvent.objects.get(action="request.rejected")
    assert entry.details["channel"] == "slack"
    assert entry.details["slack"]["user_id"] == "U0BOB"
    assert entry.details["slack"]["message_ts"] == only_message(slack)["ts"]
    assert "Rejected by Bob" in text_of(only_message(slack))
    assert ephemerals(slack, "U0BOB") == [f"You rejected request #{req.pk}."]


def test_a_non_approver_gets_no_dialog(
    slack: SlackSimulator, people: dict[str, Any], resource: Resource
) -> None:
    req = submit(people, resource)
    press(slack, "U0DAVE", "jit_reject")
    assert slack.workspace.snapshot()["views"] == []
    req.refresh_from_db()
    assert req.state == RequestState.PENDING
    assert ephemerals(slack, "U0DAVE") == [
        "You may not reject this: You are not an approver of Grafana admin."
    ]


def test_a_quorum_shows_its_progress_and_completes_in_slack(
    slack: SlackSimulator, people: dict[str, Any], resource: Resource
) -> None:
    resource.approvals_required = 2
    resource.save()
    req = submit(people, resource)
    press(slack, "U0BOB", "jit_approve")
    assert "Approvals:* 1 of 2 (Bob)" in text_of(only_message(slack))
    assert buttons(only_message(slack)) == ["jit_approve", "jit_reject"]
    assert "needs more approvals" in ephemerals(slack, "U0BOB")[0]
    press(slack, "U0BOB", "jit_approve")  # the same person again counts once
    assert Approval.objects.filter(request=req).count() == 1
    press(slack, "U0ERIN", "jit_approve")
    req.refresh_from_db()
    assert req.state == RequestState.APPROVED
    text = text_of(only_message(slack))
    assert "Approvals:* 2 of 2 (Bob, Erin)" in text and "Approved by Erin" in text


def test_slack_rate_limit_is_retried_after_retry_after(
    slack: SlackSimulator, people: dict[str, Any], resource: Resource
) -> None:
    slack.workspace.forced_limits["chat.postMessage"] = [1, 7]
    req = submit(people, resource)
    row = Notification.objects.get(channel="slackapp", request=req)
    assert row.status == Status.PENDING and row.attempts == 1
    assert "ratelimited" in row.last_error
    assert row.next_attempt_at >= timezone.now() + timedelta(seconds=6)
    assert slack.workspace.snapshot()["messages"] == []
    # The retry is due: one message, posted once.
    Notification.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now())
    assert outbox.deliver(row.pk).outcome == "sent"
    assert outbox.deliver(row.pk).outcome == "skipped"
    only_message(slack)
    assert methods(slack).count("chat.postMessage") == 1


def test_an_unchanged_message_is_not_sent_again(
    slack: SlackSimulator, people: dict[str, Any], resource: Resource
) -> None:
    req = submit(people, resource)
    row = Notification.objects.get(channel="slackapp", request=req)
    Notification.objects.filter(pk=row.pk).update(
        status=Status.PENDING, next_attempt_at=timezone.now()
    )
    assert outbox.deliver(row.pk).outcome == "sent"
    assert methods(slack) == ["chat.postMessage"]


def test_a_channel_slack_does_not_know_fails_the_row_for_good(
    slack: SlackSimulator, people: dict[str, Any], resource: Resource
) -> None:
    resource.slack_channel = "C0NOWHERE"
    resource.save()
    req = submit(people, resource)
    row = Notification.objects.get(channel="slackapp", request=req)
    assert row.status == Status.FAILED
    assert row.last_error == "Slack refused chat.postMessage: channel_not_found (HTTP 200)"


def test_stages_show_in_slack_and_an_early_stage_two_click_is_refused(
    slack: SlackSimulator, people: dict[str, Any], resource: Resource
) -> None:
    resource.approver_groups = ["approvers", "security"]
    resource.approval_stages = [
        {"name": "Team lead", "groups": ["approvers"], "count": 1},
        {"name": "Security", "groups": ["security"], "count": 1},
    ]
    resource.save()
    people["dave"].groups.add(Group.objects.get_or_create(name=claim_group_name("security"))[0])
    req = submit(people, resource)
    text = text_of(only_message(slack))
    assert "Stage 1, Team lead:* 0 of 1" in text and "Stage 2, Security:* 0 of 1" in text
    assert "Can approve now (stage 1):* Bob, Erin" in text
    press(slack, "U0DAVE", "jit_approve")  # security, but stage 1 waits
    assert ephemerals(slack, "U0DAVE") == [
        "You may not approve this: Stage 1 (Team lead) waits: 1 of approvers must approve "
        "first. You approve in stage 2 (Security) once it is complete."
    ]
    assert not Approval.objects.filter(request=req).exists()
    press(slack, "U0BOB", "jit_approve")
    assert "Can approve now (stage 2):* Dave" in text_of(only_message(slack))
    press(slack, "U0DAVE", "jit_approve")
    req.refresh_from_db()
    assert req.state == RequestState.APPROVED
    assert "Approved by Dave" in text_of(only_message(slack))
