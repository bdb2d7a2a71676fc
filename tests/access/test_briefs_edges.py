"""A break-glass grant's brief, as the reviewer reads it: who took it, and how each of the
person's earlier grants on the resource ended (revoked by whom and why, ended early by
themselves, expired, scheduled, active; break-glass reviewed or not)."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest
from django.utils import timezone

from apps.access.briefs import grant_briefs, person
from apps.access.states import GrantState, RequestState
from tests.factories import AccessRequestFactory, GrantFactory, ResourceFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_a_person_is_named_with_their_address() -> None:
    assert person(None) == "the portal"
    named = UserFactory(display_name="Alice Example", email="alice@example.com")
    assert person(named) == "Alice Example <alice@example.com>"
    bare = UserFactory(display_name="", email="bob@example.com")
    assert person(bare) == bare.label


def test_the_brief_of_a_grant_tells_how_each_earlier_grant_ended() -> None:
    now = timezone.now()
    lab = ResourceFactory(slug="lab", name="Lab")
    dave = UserFactory(email="dave@example.com", display_name="Dave")
    erin = UserFactory(email="erin@example.com", display_name="Erin")

    def past(hours_ago: int, **fields: object) -> object:
        start = now - timedelta(hours=hours_ago)
        return GrantFactory(
            request=AccessRequestFactory(resource=lab, requester=dave, state=RequestState.APPROVED),
            not_before=start,
            expires_at=start + timedelta(hours=1),
            **fields,
        )

    past(11, state=GrantState.EXPIRED)
    past(10, state=GrantState.EXPIRED)
    past(
        9,
        state=GrantState.REVOKED,
        revoked_by=erin,
        revoke_reason="Incident closed",
        is_break_glass=True,
        reviewed_at=now,
        reviewed_by=erin,
    )
    past(8, state=GrantState.REVOKED, revoked_by=dave)
    past(7, state=GrantState.REVOKED)
    scheduled = past(-48, state=GrantState.SCHEDULED)
    under_review = past(3, state=GrantState.EXPIRED, is_break_glass=True)

    [brief] = grant_briefs([under_review], zone=UTC, now=now)

    assert brief.pk == under_review.pk and brief.grant == under_review
    assert brief.requester == "Dave <dave@example.com>"
    assert brief.window_note == "expired; 1 hour"
    assert brief.history_total == 6  # the grant under review is not its own history
    assert [(h.outcome, h.break_glass) for h in brief.history] == [  # the latest five
        ("scheduled", ""),
        ("revoked", ""),
        ("ended early by the requester", ""),
        (
            "revoked by Erin <erin@example.com>: Incident closed",
            "break-glass, reviewed by Erin <erin@example.com>",
        ),
        ("expired", ""),
    ]
    assert brief.history[0].grant == scheduled


def test_revocations_name_who_and_why() -> None:
    now = timezone.now()
    lab = ResourceFactory(slug="lab", name="Lab")
    dave = UserFactory(email="dave@example.com")
    erin = UserFactory(email="erin@example.com", display_name="Erin")
    revoked = GrantFactory(
        request=AccessRequestFactory(resource=lab, requester=dave, state=RequestState.APPROVED),
        state=GrantState.REVOKED,
        revoked_by=erin,
        revoke_reason="Incident closed",
        is_break_glass=True,
    )
    by_self = GrantFactory(
        request=AccessRequestFactory(resource=lab, requester=dave, state=RequestState.APPROVED),
        state=GrantState.REVOKED,
        revoked_by=dave,
        revoke_reason="Done early",
    )

    [brief] = grant_briefs([by_self], zone=UTC, now=now)

    assert brief.window_note.startswith("ended early by the requester: Done early; ")
    assert [(h.grant, h.break_glass) for h in brief.history] == [
        (revoked, "break-glass, not reviewed")
    ]
    assert grant_briefs([], zone=UTC, now=now) == []
