"""Notification planners at their edges: an event whose request or grant is gone, or no
longer in the state the event was about, plans nothing (a late task never sends a stale
notice); a decision's Slack line says who decided, the level and the reason."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from apps.access.states import GrantState, RequestState, SyncStatus
from apps.notifications import plans
from apps.notifications.models import Channel
from tests.factories import (
    AccessLevelFactory,
    AccessRequestFactory,
    GrantFactory,
    ResourceFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

MISSING = 2_000_000_000


@pytest.mark.parametrize(
    "planner",
    [
        plans.request_decided,
        plans.expiry_reminder,
        plans.break_glass,
        plans.break_glass_refused,
        plans.removal_overdue,
    ],
)
def test_an_event_about_nothing_plans_nothing(planner: Any) -> None:
    assert planner(request_id=None, grant_id=None) == []
    assert planner(request_id=MISSING, grant_id=MISSING) == []


def test_a_decision_still_pending_plans_nothing() -> None:
    req = AccessRequestFactory(state=RequestState.PENDING)
    assert plans.request_decided(request_id=req.pk) == []


def test_ordinary_grants_plan_no_break_glass_notice() -> None:
    grant = GrantFactory(is_break_glass=False)
    assert plans.break_glass(grant_id=grant.pk) == []
    assert plans.break_glass_refused(grant_id=grant.pk, attempt="x") == []


def test_no_expiry_reminder_for_who_turned_them_off_or_a_grant_that_ended() -> None:
    quiet = GrantFactory(request__requester=UserFactory(notify_expiry=False))
    assert plans.expiry_reminder(grant_id=quiet.pk) == []
    ended = GrantFactory(state=GrantState.EXPIRED)
    assert plans.expiry_reminder(grant_id=ended.pk) == []
    reminded = GrantFactory()
    [message] = plans.expiry_reminder(grant_id=reminded.pk)
    assert message.recipient == reminded.user.email


def test_no_overdue_removal_notice_before_revocation_or_after_zero_confirmed() -> None:
    live = GrantFactory()
    assert plans.removal_overdue(grant_id=live.pk) == []
    confirmed = GrantFactory(
        state=GrantState.REVOKED, revoked_at=timezone.now(), sync_status=SyncStatus.REMOVED
    )
    assert plans.removal_overdue(grant_id=confirmed.pk) == []


def test_a_rejection_in_slack_names_the_approver_the_level_and_the_reason() -> None:
    lab = ResourceFactory(
        slug="lab", name="Lab", slack_webhook_url="https://hooks.slack.com/services/T/B/x"
    )
    level = AccessLevelFactory(resource=lab, slug="read", name="Read-only", rank=0)
    erin = UserFactory(email="erin@example.com", display_name="Erin")
    req = AccessRequestFactory(
        resource=lab,
        level=level,
        state=RequestState.REJECTED,
        decided_by=erin,
        decided_at=timezone.now(),
        decision_reason="Use the staging copy <!channel>\n please",
        duration_minutes=90,
    )

    messages = plans.request_decided(request_id=req.pk)

    assert [m.channel for m in messages] == [Channel.EMAIL, Channel.SLACK]
    assert messages[0].recipient == req.requester.email
    note = messages[1]
    assert note.recipient == "slack:lab"
    assert note.subject.endswith("for Lab: rejected by Erin")
    assert note.body.splitlines()[1:] == [
        "Duration: 1 hour 30 minutes",
        "Level: Read-only",
        "Reason: Use the staging copy &lt;!channel&gt; please",  # one line, no mention
    ]


def test_an_approval_in_slack_says_until_when_and_calls_the_reason_a_note() -> None:
    lab = ResourceFactory(
        slug="lab", name="Lab", slack_webhook_url="https://hooks.slack.com/services/T/B/x"
    )
    erin = UserFactory(email="erin@example.com", display_name="Erin")
    grant = GrantFactory(
        request__resource=lab,
        request__decided_by=erin,
        request__decision_reason="One hour only",
        expires_at=timezone.now() + timedelta(hours=1),
    )

    slack_notes = [
        m for m in plans.request_decided(request_id=grant.request_id) if m.channel == Channel.SLACK
    ]

    [note] = slack_notes
    assert note.subject.endswith("for Lab: approved by Erin")
    assert "Until: " in note.body and "Note: " in note.body
