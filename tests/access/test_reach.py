"""The one answer to "can I get in right now?" (``apps.access.reach``), at fixed moments."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from apps.access import reach, targets
from apps.access.states import GrantState, RequestKind, RequestState, SyncStatus
from tests.factories import GrantFactory, ResourceFactory, UserFactory

pytestmark = pytest.mark.django_db

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
WEEKDAYS = {"days": "mon-fri", "after": "09:00", "before": "17:00", "timezone": "Europe/Berlin"}
# Sunday 1 March 2026, 21:13 in Berlin (CET, UTC+1): the "Prod DB console" evening.
SUNDAY_EVENING = datetime(2026, 3, 1, 20, 13, tzinfo=UTC)
MONDAY_NOON = datetime(2026, 3, 2, 11, 0, tzinfo=UTC)  # 12:00 CET


def grant_at(now: datetime, **fields: Any) -> Any:
    fields.setdefault("not_before", now - timedelta(minutes=5))
    fields.setdefault("expires_at", now + timedelta(hours=2))
    fields.setdefault("sync_status", SyncStatus.LIVE)
    fields.setdefault("live_at", fields["not_before"])
    return GrantFactory(**fields)


def test_a_confirmed_grant_inside_its_window_is_allowed_until_its_end():
    grant = grant_at(MONDAY_NOON)

    answer = reach.access(grant, now=MONDAY_NOON, zone=BERLIN)

    assert answer.state == reach.ALLOWED and answer.allowed
    assert answer.until == grant.expires_at
    assert answer.label == "Allowed now, until 14:00 CET"
    assert answer.detail is None and answer.opens_at is None


def test_the_label_carries_the_zone_of_the_reader():
    grant = grant_at(MONDAY_NOON)

    assert reach.access(grant, now=MONDAY_NOON).label == "Allowed now, until 13:00 UTC"
    assert reach.access(grant, now=MONDAY_NOON, zone=NEW_YORK).label == (
        "Allowed now, until 08:00 EST"
    )


@pytest.mark.parametrize("status", [SyncStatus.PENDING, SyncStatus.PENDING_APPLY])
def test_a_rule_pomerium_has_not_confirmed_is_waiting(status):
    grant = grant_at(MONDAY_NOON, sync_status=status, live_at=None)

    answer = reach.access(grant, now=MONDAY_NOON, zone=BERLIN)

    assert (answer.state, answer.label) == (reach.WAITING, "Waiting for Pomerium")
    assert answer.detail == "The rule is written; Pomerium has not confirmed it yet."
    assert answer.until is None


def test_a_change_waiting_for_pomerium_after_the_grant_was_live_says_so():
    grant = grant_at(MONDAY_NOON, sync_status=SyncStatus.PENDING)  # extended, not yet synced

    answer = reach.access(grant, now=MONDAY_NOON)

    assert answer.state == reach.WAITING
    assert answer.detail is not None and answer.detail.startswith("A change to this access")


def test_a_sync_error_is_not_enforced():
    grant = grant_at(
        MONDAY_NOON,
        sync_status=SyncStatus.ERROR,
        live_at=None,
        sync_error="Zero refused the write: 400 invalid policy\nmore",
    )

    answer = reach.access(grant, now=MONDAY_NOON)

    assert (answer.state, answer.label) == (reach.ERROR, "Not enforced \N{EM DASH} sync error")
    assert (
        answer.detail == "Pomerium does not enforce it: Zero refused the write: 400 invalid policy"
    )


def test_a_grant_starting_tomorrow_opens_then_and_is_never_allowed_now():
    start = MONDAY_NOON + timedelta(days=1)
    grant = grant_at(MONDAY_NOON, not_before=start, expires_at=start + timedelta(hours=1))

    answer = reach.access(grant, now=MONDAY_NOON, zone=BERLIN)

    assert (answer.state, answer.opens_at) == (reach.OPENS, start)
    assert answer.label == "Opens Tue 12:00 CET"


def test_a_scheduled_grant_not_yet_confirmed_is_waiting_and_says_when_it_opens():
    start = MONDAY_NOON + timedelta(days=1)
    grant = grant_at(
        MONDAY_NOON,
        not_before=start,
        expires_at=start + timedelta(hours=1),
        sync_status=SyncStatus.PENDING,
        live_at=None,
    )

    answer = reach.access(grant, now=MONDAY_NOON, zone=BERLIN)

    assert answer.state == reach.WAITING
    assert answer.detail is not None and answer.detail.endswith("It opens Tue 12:00 CET.")


def test_outside_the_recurring_window_it_opens_at_the_next_window():
    """Gap 13: a Mon-Fri grant on a Sunday evening is not allowed, whatever the sync says."""
    grant = grant_at(SUNDAY_EVENING, schedule=WEEKDAYS, expires_at=MONDAY_NOON + timedelta(days=1))

    answer = reach.access(grant, now=SUNDAY_EVENING, zone=BERLIN)

    assert answer.state == reach.OPENS
    assert answer.label == "Opens Mon 09:00 CET"
    assert answer.opens_at == datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def test_inside_the_recurring_window_it_is_allowed_until_the_window_closes():
    grant = grant_at(MONDAY_NOON, schedule=WEEKDAYS, expires_at=MONDAY_NOON + timedelta(days=2))

    answer = reach.access(grant, now=MONDAY_NOON, zone=BERLIN)

    assert answer.label == "Allowed now, until 17:00 CET"
    assert answer.until == datetime(2026, 3, 2, 16, 0, tzinfo=UTC)


def test_a_grant_with_no_window_left_has_ended():
    grant = grant_at(
        SUNDAY_EVENING, schedule=WEEKDAYS, expires_at=SUNDAY_EVENING + timedelta(hours=2)
    )

    answer = reach.access(grant, now=SUNDAY_EVENING, zone=BERLIN)

    assert answer.state == reach.ENDED
    assert answer.detail == "No window of its schedule is left before it ends at 23:13 CET."
    assert not answer.removal_unconfirmed


def test_a_revoked_grant_has_ended_and_says_who_ended_it():
    bob = UserFactory(email="bob@example.com")
    grant = grant_at(
        MONDAY_NOON,
        state=GrantState.REVOKED,
        revoked_by=bob,
        revoked_at=MONDAY_NOON - timedelta(minutes=1),
        revoke_reason="done  here",
        sync_status=SyncStatus.REMOVED,
    )

    answer = reach.access(grant, now=MONDAY_NOON, zone=BERLIN)

    assert (answer.state, answer.label) == (reach.ENDED, "Ended")
    assert answer.detail == "Revoked by bob@example.com at 11:59 CET: done here"
    assert not answer.removal_unconfirmed


def test_a_revocation_pomerium_has_not_confirmed_may_still_let_the_person_in():
    """Gap 8: during a Zero outage the revoked person may still get in."""
    grant = grant_at(
        MONDAY_NOON,
        state=GrantState.REVOKED,
        revoked_by=UserFactory(),
        revoked_at=MONDAY_NOON,
        sync_status=SyncStatus.ERROR,
    )

    answer = reach.access(grant, now=MONDAY_NOON)

    assert answer.state == reach.ENDED and answer.removal_unconfirmed
    assert answer.detail is not None and "revocation not yet enforced" in answer.detail
    # Once the rule's own date window has closed, Pomerium denies by itself.
    later = grant.expires_at + timedelta(seconds=1)
    assert not reach.access(grant, now=later).removal_unconfirmed


def test_a_grant_its_holder_gave_up_was_released():
    grant = grant_at(MONDAY_NOON, state=GrantState.REVOKED, revoked_at=MONDAY_NOON)
    grant.revoked_by = grant.user
    grant.save()

    answer = reach.access(grant, now=MONDAY_NOON, zone=BERLIN)

    assert answer.detail is not None and answer.detail.startswith("Released by its holder at")


def test_an_expired_grant_has_ended():
    grant = grant_at(MONDAY_NOON, expires_at=MONDAY_NOON, state=GrantState.EXPIRED)

    answer = reach.access(grant, now=MONDAY_NOON, zone=BERLIN)

    assert (answer.state, answer.detail) == (reach.ENDED, "Expired at 12:00 CET.")
    assert not answer.removal_unconfirmed


def test_the_api_shape():
    grant = grant_at(MONDAY_NOON)

    assert reach.access(grant, now=MONDAY_NOON).as_json() == {
        "state": "allowed",
        "label": "Allowed now, until 13:00 UTC",
        "until": grant.expires_at,
        "opens_at": None,
        "detail": None,
    }


# --- A target that cannot close a rule by itself (no DATE): the worker opens and closes ---


@pytest.fixture
def no_date(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(targets, "capabilities", lambda target: frozenset())


@pytest.mark.usefixtures("no_date")
def test_without_date_a_future_grant_opens_later_with_no_rule_written_yet():
    start = MONDAY_NOON + timedelta(hours=1)
    grant = grant_at(MONDAY_NOON, not_before=start, sync_status=SyncStatus.PENDING, live_at=None)

    assert reach.access(grant, now=MONDAY_NOON).state == reach.OPENS


@pytest.mark.usefixtures("no_date")
def test_without_date_allowed_needs_the_rule_confirmed_for_the_current_window():
    grant = grant_at(
        MONDAY_NOON,
        schedule=WEEKDAYS,
        not_before=MONDAY_NOON - timedelta(days=1),
        expires_at=MONDAY_NOON + timedelta(days=2),
        live_at=SUNDAY_EVENING - timedelta(days=3),  # confirmed for last Thursday's window
        enforced_at=SUNDAY_EVENING - timedelta(days=3),
    )

    assert reach.access(grant, now=MONDAY_NOON).state == reach.WAITING
    grant.enforced_at = datetime(2026, 3, 2, 8, 0, 5, tzinfo=UTC)  # this morning's window
    assert reach.access(grant, now=MONDAY_NOON).state == reach.ALLOWED


@pytest.mark.usefixtures("no_date")
def test_without_date_an_ended_grant_still_in_the_policy_may_let_the_person_in():
    grant = grant_at(MONDAY_NOON, expires_at=MONDAY_NOON - timedelta(minutes=1))

    answer = reach.access(grant, now=MONDAY_NOON)

    assert answer.state == reach.ENDED and answer.removal_unconfirmed


# --- Requests: their outcome in words ---------------------------------------------------


def request(**fields: Any) -> Any:
    base = {
        "state": RequestState.APPROVED,
        "kind": RequestKind.NEW,
        "auto_approved_rule": None,
        "decided_by": None,
    }
    return SimpleNamespace(**{**base, **fields})


def test_outcomes_never_say_0_of_1():
    bob = UserFactory(email="bob@example.com")
    revoked = grant_at(
        MONDAY_NOON, state=GrantState.REVOKED, revoked_by=bob, revoked_at=MONDAY_NOON
    )
    released = grant_at(MONDAY_NOON, state=GrantState.REVOKED, revoked_at=MONDAY_NOON)
    released.revoked_by = released.user
    running = grant_at(MONDAY_NOON)
    now, zone = MONDAY_NOON + timedelta(minutes=1), BERLIN

    def say(req: Any, grant: Any = None, **kw: Any) -> str:
        return reach.outcome(req, grant, now=now, zone=zone, **kw)

    assert say(request(), revoked) == "Approved → revoked by bob@example.com at 12:00 CET"
    assert say(request(), released) == "Approved → released"
    assert say(request(), running) == "Approved"
    assert say(request(auto_approved_rule={"group": "oncall"}), running) == "Auto-approved"
    assert say(request(kind=RequestKind.BREAK_GLASS), running) == "Break-glass"
    assert say(request(kind=RequestKind.EXTENSION), revoked) == "Approved"
    assert say(request(state=RequestState.PENDING), required=1) == "Waiting for approval"
    assert say(request(state=RequestState.PENDING), approvals=1, required=2) == (
        "Waiting for approval (1 of 2)"
    )
    assert say(request(state=RequestState.REJECTED, decided_by=bob)) == (
        "Rejected by bob@example.com"
    )
    assert say(request(state=RequestState.CANCELLED)) == "Cancelled"
    assert say(request(state=RequestState.EXPIRED)) == "Expired undecided"
    expired = grant_at(MONDAY_NOON, state=GrantState.EXPIRED, expires_at=MONDAY_NOON)
    assert say(request(), expired) == "Approved → expired"


def test_a_resource_on_another_cluster_asks_that_clusters_capabilities(monkeypatch):
    asked: list[str] = []

    def capabilities(target: str) -> frozenset[str]:
        asked.append(target)
        return targets.ZERO_V0

    monkeypatch.setattr(targets, "capabilities", capabilities)
    grant = grant_at(MONDAY_NOON, request__resource=ResourceFactory())
    reach.access(grant, now=MONDAY_NOON)

    assert asked == [grant.resource.cluster]
