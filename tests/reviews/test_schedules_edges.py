"""Review schedules at their edges: every bad field of the bootstrap file's ``reviews:``
section is refused with its place and rule, and nothing is written (all or nothing); a
changed schedule is updated and audited; each period kind names its campaign."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine

from apps.access.models import Resource
from apps.access.services.resources import DefinitionError
from apps.audit.models import AuditEvent
from apps.reviews import schedules
from apps.reviews.actions import ReviewAction
from apps.reviews.models import Campaign, ReviewSchedule

pytestmark = pytest.mark.django_db

GOOD = {"key": "prod", "every": "quarter", "owner": "carol@example.com"}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("prod", "reviews[1]: each review schedule must be a mapping."),
        ({**GOOD, "key": "Prod!"}, "reviews[1]: 'key' must be a slug"),
        ({**GOOD, "key": 5}, "reviews[1]: 'key' must be a slug"),
        ({**GOOD, "due_days": 0}, "reviews[1] (prod): 'due_days' must be a number of days from 1"),
        ({**GOOD, "due_days": 366}, "'due_days' must be a number of days from 1 to 365."),
        ({**GOOD, "due_days": True}, "'due_days' must be a number of days"),
        ({**GOOD, "due_days": "14"}, "'due_days' must be a number of days"),
        ({**GOOD, "resources": "some"}, "'resources' must be 'all' or a list of slugs."),
        ({**GOOD, "resources": []}, "'resources' must be 'all' or a list of slugs."),
        ({**GOOD, "resources": ["wiki", 3]}, "'resources' must be 'all' or a list of slugs."),
        ({**GOOD, "name": "   "}, "'name' must be text of at most 200 characters."),
        ({**GOOD, "name": "x" * 201}, "'name' must be text of at most 200 characters."),
        ({**GOOD, "name": 7}, "'name' must be text of at most 200 characters."),
        ({**GOOD, "reviewer_group": ["sec"]}, "'reviewer_group' must be a group name."),
        ({**GOOD, "reviewer_group": "g" * 151}, "'reviewer_group' must be a group name."),
        ({**GOOD, "active": "yes"}, "'active' must be true or false."),
        ({**GOOD, "owner": "  "}, "'owner' must be an email."),
    ],
)
def test_a_bad_entry_is_refused_and_nothing_is_written(entry: Any, message: str) -> None:
    fine = {**GOOD, "key": "other"}
    with pytest.raises(DefinitionError) as caught:
        schedules.apply_bootstrap_section([fine, entry])
    assert message in str(caught.value)
    assert not ReviewSchedule.objects.exists()
    assert not AuditEvent.objects.filter(action=ReviewAction.SCHEDULE_CHANGED).exists()


def test_a_key_twice_is_refused_and_nothing_is_written() -> None:
    with pytest.raises(DefinitionError, match=r"reviews: a key appears twice\."):
        schedules.apply_bootstrap_section([GOOD, {**GOOD, "every": "year"}])
    assert not ReviewSchedule.objects.exists()


def test_a_changed_schedule_is_updated_and_audited_with_before_and_after(carol: Any) -> None:
    Resource.objects.create(slug="wiki", name="Wiki")
    assert schedules.apply_bootstrap_section([GOOD]) == "1 created, 0 updated, 0 unchanged"

    changed = {**GOOD, "every": "month", "resources": ["wiki", "wiki"], "name": " Prod  "}
    assert schedules.apply_bootstrap_section([changed], actor=carol) == (
        "0 created, 1 updated, 0 unchanged"
    )

    row = ReviewSchedule.objects.get()
    assert (row.every, row.resources, row.name) == ("month", ["wiki"], "Prod")
    event = AuditEvent.objects.filter(action=ReviewAction.SCHEDULE_CHANGED).latest("seq")
    assert event.actor_label == carol.email
    assert event.details["before"]["every"] == "quarter"
    assert event.details["after"]["every"] == "month"


@pytest.mark.parametrize(
    ("every", "name"),
    [
        ("month", "Prod 2026-11"),
        ("half-year", "Prod 2026-H2"),
        ("year", "Prod 2026"),
    ],
)
def test_each_period_kind_names_its_campaign(
    carol: Any, grafana: Resource, every: str, name: str
) -> None:
    schedules.apply_bootstrap_section([{**GOOD, "every": every, "name": "Prod"}])
    with time_machine.travel(datetime(2026, 11, 20, 9, 0, tzinfo=UTC), tick=False):
        (campaign,) = schedules.open_due()
        assert schedules.open_due() == []
    assert campaign.name == name
    assert Campaign.objects.count() == 1


def test_an_inactive_schedule_opens_nothing(carol: Any, grafana: Resource) -> None:
    schedules.apply_bootstrap_section([{**GOOD, "active": False}])
    with time_machine.travel(datetime(2026, 11, 20, 9, 0, tzinfo=UTC), tick=False):
        assert schedules.open_due() == []
    assert not Campaign.objects.exists()


def test_a_schedule_with_nothing_to_review_is_logged_and_opens_nothing(
    carol: Any, caplog: pytest.LogCaptureFixture
) -> None:
    schedules.apply_bootstrap_section([GOOD])  # every active resource: there are none
    with time_machine.travel(datetime(2026, 11, 20, 9, 0, tzinfo=UTC), tick=False):
        assert schedules.open_due() == []
    assert not Campaign.objects.exists()
    [message] = [r.getMessage() for r in caplog.records if r.name == "apps.reviews.schedules"]
    assert message.startswith("access review schedule prod: ")
