"""Slack interaction payloads at their edges: anything that is not one of the portal's
buttons or its dialog is refused with a reason, audited, and changes no request; a Slack
user whose profile carries no email, or a Slack that cannot be asked, decides nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from apps.access.states import RequestState
from apps.audit.models import AuditEvent
from apps.slack import interactions
from apps.slack.actions import SlackAction
from apps.slack.interactions import Refused, handle, parse, portal_person
from apps.slack.messages import APPROVE, REASON_BLOCK, REASON_INPUT, REASON_VIEW, REJECT
from devtools.slacksim.simulator import SlackSimulator
from devtools.slacksim.workspace import Person
from tests.factories import AccessRequestFactory, UserFactory

NOW = datetime(2026, 9, 1, 9, 0, tzinfo=UTC)
USER = {"id": "U0BOB", "team_id": "T0TEAM"}


def button(action_id: str = APPROVE, value: Any = "42", **extra: Any) -> dict[str, Any]:
    return {
        "type": "block_actions",
        "user": USER,
        "actions": [{"action_id": action_id, "value": value}],
        **extra,
    }


def dialog(metadata: str, reason: Any = "Not needed") -> dict[str, Any]:
    return {
        "type": "view_submission",
        "user": USER,
        "team": {"id": "T0OTHER"},
        "view": {
            "callback_id": REASON_VIEW,
            "private_metadata": metadata,
            "state": {"values": {REASON_BLOCK: {REASON_INPUT: {"value": reason}}}},
        },
    }


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([], "Not an interaction payload."),
        ({"type": "block_actions", "user": {"id": ""}}, "The payload names no Slack user."),
        ({"type": "block_actions", "user": "U0BOB"}, "The payload names no Slack user."),
        (button("jit_delete"), "That button is not one of the portal's."),
        ({**button(), "actions": []}, "That button is not one of the portal's."),
        ({**button(), "actions": ["jit_approve"]}, "That button is not one of the portal's."),
        (button(value="42; drop"), "This button does not name a request."),
        (button(value=42), "This button does not name a request."),
        (button(value="4" * 19), "This button does not name a request."),
        (button(value="\uff14\uff12"), "This button does not name a request."),  # fullwidth 42
        (
            {**dialog("{}"), "view": {"callback_id": "other"}},
            "That dialog is not one of the portal's.",
        ),
        (dialog("{not json"), "The dialog lost its request."),
        (dialog("[42]"), "The dialog lost its request."),
        (dialog("{}"), "This button does not name a request."),
        ({"type": "shortcut", "user": USER}, "The portal takes only its own buttons and dialog."),
    ],
)
def test_payloads_that_are_not_the_portals_are_refused(payload: Any, message: str) -> None:
    with pytest.raises(Refused) as caught:
        parse(payload)
    assert caught.value.code == "bad_payload"
    assert str(caught.value) == message


def test_a_button_reads_its_channel_from_either_place_and_bounds_every_field() -> None:
    click = parse(
        button(
            REJECT,
            "42",
            channel={"id": "C0APPROVALS"},
            container={"message_ts": "1.2"},
            response_url="https://hooks.slack.com/x" + "y" * 2000,
            trigger_id="t-1",
        )
    )
    assert (click.kind, click.request_id, click.team_id) == ("reject", 42, "T0TEAM")
    assert (click.channel_id, click.message_ts, click.trigger_id) == ("C0APPROVALS", "1.2", "t-1")
    assert len(click.response_url) == 1000


def test_a_dialog_submission_carries_its_request_and_the_trimmed_reason() -> None:
    meta = json.dumps({"request": 7, "channel": "C1", "message_ts": "9.9", "response_url": "u"})
    click = parse(dialog(meta, reason="  Not needed any more  "))
    assert (click.kind, click.request_id, click.reason) == ("reason", 7, "Not needed any more")
    assert (click.team_id, click.channel_id, click.message_ts) == ("T0OTHER", "C1", "9.9")
    assert parse(dialog(meta, reason=None)).reason == ""
    no_state = dialog(meta)
    no_state["view"]["state"] = "gone"
    assert parse(no_state).reason == ""


@pytest.mark.django_db
def test_a_refused_payload_is_audited_and_changes_no_request() -> None:
    req = AccessRequestFactory()

    outcome = handle(button(value=f"{req.pk}x"), NOW)

    assert outcome.reply == "You may not approve this: This button does not name a request."
    assert outcome.response_url == ""
    event = AuditEvent.objects.get(action=SlackAction.INTERACTION_REFUSED)
    assert event.actor_label == "slack:U0BOB"
    assert event.details == {
        "reason": "bad_payload",
        "message": "This button does not name a request.",
    }
    req.refresh_from_db()
    assert req.state == RequestState.PENDING


@pytest.mark.django_db
def test_a_dialog_for_a_request_that_is_gone_answers_in_the_dialog() -> None:
    meta = json.dumps({"request": 999999, "response_url": "https://hooks.slack.com/x"})
    outcome = handle(dialog(meta), NOW)
    assert outcome.dialog_errors == {
        REASON_BLOCK: "You may not reject this: The portal has no such request."
    }
    assert outcome.reply == ""
    event = AuditEvent.objects.get(action=SlackAction.INTERACTION_REFUSED)
    assert event.details["reason"] == "unknown_request"
    assert event.details["action"] == "reason"


@pytest.fixture
def sim(settings: Any) -> Iterator[SlackSimulator]:
    simulator = SlackSimulator(bot_token="xoxb-edge", signing_secret="s" * 32).start()
    simulator.workspace.add_person(Person(id="U0NOMAIL", name="nomail", email=""))
    simulator.workspace.add_person(Person(id="U0BOB", name="bob", email="bob@example.com"))
    settings.SLACK_BOT_TOKEN = "xoxb-edge"
    settings.SLACK_API_URL = simulator.url
    settings.SLACK_TIMEOUT_SECONDS = 5
    yield simulator
    simulator.stop()


@pytest.mark.django_db
def test_a_slack_profile_without_an_email_decides_nothing(sim: SlackSimulator) -> None:
    with pytest.raises(Refused) as caught:
        portal_person("U0NOMAIL")
    assert (caught.value.code, str(caught.value)) == (
        "no_email",
        "Slack gave the portal no email for you.",
    )


@pytest.mark.django_db
def test_a_slack_that_refuses_the_portal_is_unavailable_not_unknown(
    sim: SlackSimulator, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    UserFactory(email="bob@example.com")
    assert portal_person("U0BOB").email == "bob@example.com"
    settings.SLACK_BOT_TOKEN = "xoxb-revoked"
    with pytest.raises(Refused) as caught:
        portal_person("U0BOB")
    assert caught.value.code == "slack_unavailable"
    assert str(caught.value) == "The portal could not ask Slack who you are; try again."
    assert any("users.info failed for a click" in r.getMessage() for r in caplog.records)
    assert not any("xoxb-revoked" in r.getMessage() for r in caplog.records)


def test_a_reply_without_a_url_sends_nothing_and_a_failed_reply_is_only_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    interactions.reply("", "hello")  # nothing to send to
    interactions.reply("http://127.0.0.1:9/hook", "hello")  # nothing listens there
    ours = [r.getMessage() for r in caplog.records if r.name == "apps.slack.interactions"]
    assert ours == ["could not send an ephemeral reply: URLError"]
