"""Every click the portal refuses: an ephemeral reply (where Slack's own response_url is
known), an audit entry, and no change at all."""

from __future__ import annotations

from typing import Any

import pytest

from apps.access import services
from apps.access.models import AccessRequest, Approval, Resource
from apps.access.states import RequestState
from apps.audit.models import AuditEvent
from devtools.slacksim.simulator import ApiError, SlackSimulator
from tests.slack.conftest import CHANNEL
from tests.slack.helpers import ephemerals, only_message

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def pending(people: dict[str, Any], resource: Resource, slack: SlackSimulator) -> AccessRequest:
    return services.submit_request(
        requester=people["alice"],
        resource=resource,
        duration_minutes=60,
        justification="Debugging the checkout outage",
    )


def click(slack: SlackSimulator, user: str, action: str = "jit_approve", **extra: Any) -> Any:
    message = only_message(slack)
    return slack.click(
        {"user": user, "channel": CHANNEL, "ts": message["ts"], "action_id": action, **extra}
    )


def refusals() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="slack.interaction_refused").order_by("seq"))


def assert_unchanged(req: AccessRequest) -> None:
    req.refresh_from_db()
    assert req.state == RequestState.PENDING
    assert not Approval.objects.filter(request=req).exists()
    assert not AuditEvent.objects.filter(
        action__in=["request.approved", "request.rejected", "request.approval_recorded"]
    ).exists()


def test_a_bad_signature_is_refused_without_reading_the_payload(
    slack: SlackSimulator, pending: AccessRequest
) -> None:
    result = click(slack, "U0BOB", tamper="signature")
    assert result["status"] == 401
    assert_unchanged(pending)
    (entry,) = refusals()
    assert entry.details["reason"] == "bad_signature"
    assert "slack" not in entry.details  # nothing of an unsigned body is trusted
    # Its response_url is whatever the sender wrote: the portal does not call it.
    assert ephemerals(slack, "U0BOB") == []


def test_a_stale_timestamp_is_refused(slack: SlackSimulator, pending: AccessRequest) -> None:
    result = click(slack, "U0BOB", age_seconds=6 * 60)
    assert result["status"] == 200
    assert_unchanged(pending)
    (entry,) = refusals()
    assert entry.details["reason"] == "stale_timestamp"
    assert entry.details["slack"] == {"user_id": "U0BOB"}
    assert ephemerals(slack, "U0BOB") == [
        "Nothing was done: This click is more than 5 minutes old; click again."
    ]


def test_a_replayed_click_is_refused(
    slack: SlackSimulator, people: dict[str, Any], resource: Resource
) -> None:
    resource.approvals_required = 2
    resource.save()
    req = services.submit_request(
        requester=people["alice"],
        resource=resource,
        duration_minutes=60,
        justification="Debugging the checkout outage",
    )
    first = click(slack, "U0BOB")
    assert first["status"] == 200
    assert Approval.objects.filter(request=req).count() == 1
    again = slack.replay(first["delivery"])
    assert again["status"] == 200
    assert Approval.objects.filter(request=req).count() == 1
    (entry,) = refusals()
    assert entry.details["reason"] == "replay"
    assert ephemerals(slack, "U0BOB")[-1] == (
        "Nothing was done: This click was already received; it is not taken twice."
    )


@pytest.mark.parametrize(
    ("user", "reason", "actor", "says"),
    [
        ("U0MALLORY", "unknown_person", None, "You have no portal account"),
        ("U0ALICE", "not_allowed", "alice", "You cannot decide your own request."),
        ("U0DAVE", "not_allowed", "dave", "You are not an approver of Grafana admin."),
    ],
)
def test_people_who_may_not_approve_are_refused(
    slack: SlackSimulator,
    pending: AccessRequest,
    people: dict[str, Any],
    user: str,
    reason: str,
    actor: str | None,
    says: str,
) -> None:
    assert click(slack, user)["status"] == 200
    assert_unchanged(pending)
    (entry,) = refusals()
    assert entry.details["reason"] == reason
    assert entry.details["slack"]["user_id"] == user
    assert entry.target_id == str(pending.pk)
    if actor is None:
        assert entry.actor_id is None and entry.actor_label == f"slack:{user}"
    else:
        assert entry.actor_id == people[actor].pk
    (reply,) = ephemerals(slack, user)
    assert reply.startswith("You may not approve this: ") and says in reply


def test_a_slack_user_slack_does_not_know_is_refused(
    slack: SlackSimulator, pending: AccessRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The user left the workspace between the click and the portal's question.
    original = slack.api

    def forgotten(method: str, args: dict[str, Any]) -> dict[str, Any]:
        if method == "users.info" and args.get("user") == "U0BOB":
            raise ApiError("user_not_found")
        return original(method, args)

    monkeypatch.setattr(slack, "api", forgotten)
    click(slack, "U0BOB")
    assert_unchanged(pending)
    (entry,) = refusals()
    assert entry.details["reason"] == "unknown_slack_user"
    assert entry.actor_label == "slack:U0BOB"
    assert ephemerals(slack, "U0BOB") == [
        "You may not approve this: Slack does not know your user."
    ]


def test_a_deleted_or_bot_slack_user_is_refused(
    slack: SlackSimulator, pending: AccessRequest
) -> None:
    slack.workspace.people["U0BOB"].deleted = True
    click(slack, "U0BOB")
    assert_unchanged(pending)
    assert refusals()[0].details["reason"] == "not_a_person"


def test_an_unconfirmed_slack_email_is_not_trusted(
    slack: SlackSimulator, pending: AccessRequest
) -> None:
    slack.workspace.people["U0BOB"].is_email_confirmed = False
    click(slack, "U0BOB")
    assert_unchanged(pending)
    assert refusals()[0].details["reason"] == "email_unconfirmed"


def test_a_click_after_the_request_was_decided_is_refused(
    slack: SlackSimulator, pending: AccessRequest, people: dict[str, Any]
) -> None:
    message = only_message(slack)
    services.reject_request(pending, approver=people["erin"], reason="Not now")
    # The old message's buttons are gone now; a click sent before the update arrives late.
    with slack.workspace.lock:
        slack.workspace.messages[(CHANNEL, message["ts"])].blocks = message["blocks"]
    click(slack, "U0BOB")
    pending.refresh_from_db()
    assert pending.state == RequestState.REJECTED
    assert not Approval.objects.filter(request=pending).exists()
    (entry,) = refusals()
    assert entry.details["reason"] == "not_pending"
    (reply,) = ephemerals(slack, "U0BOB")
    assert "rejected" in reply
