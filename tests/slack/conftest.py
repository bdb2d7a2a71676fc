"""Fixtures for the Slack app: the Slack stand-in over real HTTP, the portal on a live server.

The stand-in sends its signed clicks to the portal's real ``/slack/interactions`` on
pytest-django's live server, and the portal calls the stand-in's Web API. Celery runs eager
(in the thread that enqueued), so the outbox delivers a message before the call returns.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from apps.access.models import Resource
from apps.accounts.models import User
from devtools.slacksim.simulator import SlackSimulator
from devtools.slacksim.workspace import Person
from jitportal.celery import app as celery_app
from tests.factories import ResourceFactory, UserFactory

BOT_TOKEN = "xoxb-test-0001-bot"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
CHANNEL = "C0APPROVALS"


@pytest.fixture(autouse=True)
def eager_celery() -> Iterator[None]:
    old = celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = False
    yield
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = old


@pytest.fixture
def slack(live_server: Any, settings: Any) -> Iterator[SlackSimulator]:
    sim = SlackSimulator(
        bot_token=BOT_TOKEN,
        signing_secret=SIGNING_SECRET,
        interactivity_url=f"{live_server.url}/slack/interactions",
    ).start()
    sim.workspace.add_channel(CHANNEL, "access-approvals")
    for person_id, name, email in (
        ("U0ALICE", "alice", "alice@example.com"),
        ("U0BOB", "bob", "Bob@Example.com"),  # the portal compares emails normalised
        ("U0ERIN", "erin", "erin@example.com"),
        ("U0DAVE", "dave", "dave@example.com"),
        ("U0MALLORY", "mallory", "mallory@example.com"),
    ):
        sim.workspace.add_person(Person(id=person_id, name=name, email=email))
    settings.SLACK_BOT_TOKEN = BOT_TOKEN
    settings.SLACK_SIGNING_SECRET = SIGNING_SECRET
    settings.SLACK_API_URL = sim.url
    settings.SLACK_TIMEOUT_SECONDS = 5
    settings.PORTAL_URL = "https://jit.example.com"
    yield sim
    sim.stop()


@pytest.fixture
def people() -> dict[str, User]:
    return {
        "alice": UserFactory(
            username="idp|alice", email="alice@example.com", display_name="Alice", groups=["eng"]
        ),
        "bob": UserFactory(
            username="idp|bob", email="bob@example.com", display_name="Bob", groups=["approvers"]
        ),
        "erin": UserFactory(
            username="idp|erin", email="erin@example.com", display_name="Erin", groups=["approvers"]
        ),
        "dave": UserFactory(
            username="idp|dave", email="dave@example.com", display_name="Dave", groups=["eng"]
        ),
    }


@pytest.fixture
def resource() -> Resource:
    return ResourceFactory(
        slug="grafana", name="Grafana admin", approver_groups=["approvers"], slack_channel=CHANNEL
    )
