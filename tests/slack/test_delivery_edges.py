"""A request's Slack message at its edges: nothing is planned without the Slack app, a
request, or a channel to post in; a row whose request or channel is gone fails for good
(no retry can fix it) and posts nothing."""

from __future__ import annotations

from typing import Any

import pytest

from apps.notifications import services as outbox
from apps.notifications.models import Channel, Notification
from apps.slack import delivery
from apps.slack.models import SlackMessage
from tests.factories import AccessRequestFactory, GrantFactory, ResourceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def configured(settings: Any) -> None:
    settings.SLACK_BOT_TOKEN = "xoxb-edge"
    settings.SLACK_API_URL = "http://127.0.0.1:9"  # never reached by these tests
    settings.PORTAL_URL = "https://jit.example.com"


def test_nothing_is_planned_without_the_slack_app(settings: Any) -> None:
    settings.SLACK_BOT_TOKEN = ""
    req = AccessRequestFactory(resource=ResourceFactory(slack_channel="C0APPROVALS"))
    assert delivery.plan("request_submitted", {"request_id": req.pk}) is None


@pytest.mark.usefixtures("configured")
def test_nothing_is_planned_without_a_request_or_a_channel() -> None:
    assert delivery.plan("request_submitted", {}) is None
    assert delivery.plan("request_submitted", {"request_id": 2_000_000_000}) is None
    assert delivery.plan("grant_revoked", {"grant_id": 2_000_000_000}) is None
    quiet = AccessRequestFactory(resource=ResourceFactory(slack_channel=""))
    assert delivery.plan("request_submitted", {"request_id": quiet.pk}) is None


@pytest.mark.usefixtures("configured")
def test_a_grants_event_updates_its_requests_message() -> None:
    lab = ResourceFactory(slug="lab", slack_channel="C0APPROVALS")
    grant = GrantFactory(request__resource=lab)

    message = delivery.plan("grant_revoked", {"grant_id": grant.pk})

    assert message is not None
    assert (message.channel, message.recipient, message.request_id) == (
        Channel.SLACK_APP,
        "slack:lab",
        grant.request_id,
    )


@pytest.mark.usefixtures("configured")
def test_a_message_already_posted_is_kept_in_step_after_the_channel_is_removed() -> None:
    lab = ResourceFactory(slug="lab", slack_channel="")
    req = AccessRequestFactory(resource=lab)
    SlackMessage.objects.create(request=req, channel="C0OLD", ts="1700000000.000100")
    message = delivery.plan("request_decided", {"request_id": req.pk})
    assert message is not None and message.request_id == req.pk


@pytest.mark.usefixtures("configured")
def test_a_row_whose_request_or_channel_is_gone_fails_for_good() -> None:
    with pytest.raises(outbox.DeliveryError) as no_request:
        delivery.send(Notification(channel=Channel.SLACK_APP, request_id=None))
    assert no_request.value.permanent and str(no_request.value) == "the request is gone"

    with pytest.raises(outbox.DeliveryError) as gone:
        delivery.send(Notification(channel=Channel.SLACK_APP, request_id=2_000_000_000))
    assert gone.value.permanent and str(gone.value) == "the request is gone"

    req = AccessRequestFactory(resource=ResourceFactory(slack_channel=""))
    with pytest.raises(outbox.DeliveryError) as no_channel:
        delivery.send(Notification(channel=Channel.SLACK_APP, request_id=req.pk))
    assert no_channel.value.permanent
    assert str(no_channel.value) == "the resource has no Slack channel"
    assert not SlackMessage.objects.filter(request=req).exists()  # nothing kept, nothing posted
