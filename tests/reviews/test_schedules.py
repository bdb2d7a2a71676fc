"""Recurring reviews from the settings and from the bootstrap file; the review settings."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.core.checks import run_checks
from django.core.management import CommandError, call_command
from django.test import override_settings

from apps.access.models import Resource
from apps.audit.models import AuditEvent
from apps.reviews import schedules
from apps.reviews.actions import ReviewAction
from apps.reviews.models import Campaign, ReviewSchedule
from apps.reviews.periods import period_start
from apps.reviews.tasks import tick
from tests.test_settings import PRODUCTION, manage

pytestmark = pytest.mark.django_db

NOV = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("every", "at", "start"),
    [
        ("quarter", NOV, datetime(2026, 10, 1, tzinfo=UTC)),
        ("month", NOV, datetime(2026, 11, 1, tzinfo=UTC)),
        ("half-year", NOV, datetime(2026, 7, 1, tzinfo=UTC)),
        ("year", NOV, datetime(2026, 1, 1, tzinfo=UTC)),
        ("quarter", datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)),
    ],
)
def test_period_starts(every: str, at: datetime, start: datetime) -> None:
    assert period_start(every, at) == start


def test_a_quarterly_review_from_the_settings_opens_once_per_quarter(
    settings: Any, carol: Any, grafana: Resource
) -> None:
    settings.ACCESS_REVIEW_EVERY = "quarter"
    settings.ACCESS_REVIEW_OWNER = "Carol@Example.com"
    settings.ACCESS_REVIEW_DUE_DAYS = 10

    with time_machine.travel(NOV, tick=False):
        assert tick()["opened"] == 1
        assert tick()["opened"] == 0
    with time_machine.travel(datetime(2027, 1, 2, tzinfo=UTC), tick=False):
        assert tick()["opened"] == 1

    names = list(Campaign.objects.order_by("opened_at").values_list("name", "schedule_key"))
    assert names == [
        ("Access review 2026-Q4", "settings:2026-10-01"),
        ("Access review 2027-Q1", "settings:2027-01-01"),
    ]
    first = Campaign.objects.order_by("opened_at").first()
    assert first.owner == carol and first.due_at == datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    assert (
        AuditEvent.objects.filter(action=ReviewAction.CAMPAIGN_OPENED).first().actor_label
        == "system"
    )


def test_no_campaign_without_an_owner_who_may_run_reviews(
    settings: Any, bob: Any, grafana: Resource
) -> None:
    settings.ACCESS_REVIEW_EVERY = "quarter"
    settings.ACCESS_REVIEW_OWNER = "bob@example.com"  # an approver, not an auditor
    with time_machine.travel(NOV, tick=False):
        assert schedules.open_due() == []


BOOTSTRAP = """
resources:
  - slug: wiki
    name: Wiki
    approver_groups: [approvers]
reviews:
  - key: prod-quarterly
    name: Production access review
    every: quarter
    due_days: 21
    owner: carol@example.com
    resources: [wiki]
    reviewer_group: security
"""


def bootstrap(tmp_path: Path, text: str) -> str:
    path = tmp_path / "resources.yaml"
    path.write_text(text)
    out = io.StringIO()
    call_command("bootstrap", str(path), stdout=out)
    return out.getvalue()


def test_schedules_from_the_bootstrap_file(tmp_path: Path, carol: Any) -> None:
    assert bootstrap(tmp_path, BOOTSTRAP).splitlines() == [
        "bootstrap: 1 created, 0 updated, 0 unchanged",
        "bootstrap: reviews: 1 created, 0 updated, 0 unchanged",
    ]
    assert bootstrap(tmp_path, BOOTSTRAP).splitlines()[1] == (
        "bootstrap: reviews: 0 created, 0 updated, 1 unchanged"
    )
    row = ReviewSchedule.objects.get()
    assert (row.every, row.due_days, row.resources, row.reviewer_group) == (
        "quarter",
        21,
        ["wiki"],
        "security",
    )
    assert AuditEvent.objects.filter(action=ReviewAction.SCHEDULE_CHANGED).count() == 1

    with time_machine.travel(NOV, tick=False):
        (campaign,) = schedules.open_due()

    assert campaign.name == "Production access review 2026-Q4"
    assert set(campaign.items.values_list("resource_slug", flat=True)) == {"wiki"}
    assert campaign.reviewer_group == "security"


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("reviews: nope", "'reviews' must be a list"),
        ("reviews:\n  - {key: x, every: weekly, owner: a@example.com}", "'every' must be one of"),
        ("reviews:\n  - {key: x, every: quarter}", "'owner' must be an email"),
        (
            "reviews:\n  - {key: x, every: quarter, owner: a@b.c, resources: [nope]}",
            "no resource nope",
        ),
        ("reviews:\n  - {key: settings, every: quarter, owner: a@b.c}", "not 'settings'"),
        ("reviews:\n  - {key: x, every: quarter, owner: a@b.c, colour: red}", "unknown setting"),
    ],
)
def test_a_bad_reviews_section_changes_nothing(tmp_path: Path, section: str, message: str) -> None:
    text = "resources:\n  - {slug: wiki, name: Wiki}\n" + section + "\n"
    with pytest.raises(CommandError, match=message) as caught:
        bootstrap(tmp_path, text)
    assert caught.value.returncode == 2
    assert not Resource.objects.exists() and not ReviewSchedule.objects.exists()


def review_errors(**overrides: Any) -> list[str]:
    with override_settings(**overrides):
        return [m.msg for m in run_checks() if m.id == "reviews.E001"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"ACCESS_REVIEW_EVERY": "weekly", "ACCESS_REVIEW_OWNER": "a@b.c"}, "ACCESS_REVIEW_EVERY"),
        ({"ACCESS_REVIEW_EVERY": "quarter", "ACCESS_REVIEW_OWNER": ""}, "ACCESS_REVIEW_OWNER"),
        ({"ACCESS_REVIEW_REMIND_DAYS": -1}, "REMIND_DAYS"),
        ({"ACCESS_REVIEW_LONG_GRANT_HOURS": 0}, "LONG_GRANT_HOURS"),
    ],
)
def test_each_bad_review_setting_is_one_line(overrides: dict[str, Any], message: str) -> None:
    errors = review_errors(**overrides)
    assert len(errors) == 1 and message in errors[0]


def test_good_review_settings_pass() -> None:
    assert review_errors(ACCESS_REVIEW_EVERY="quarter", ACCESS_REVIEW_OWNER="a@example.com") == []


def test_the_portal_refuses_to_start_with_a_bad_schedule() -> None:
    result = manage("check", env={**PRODUCTION, "ACCESS_REVIEW_EVERY": "weekly"})
    assert result.returncode == 3
    assert "ACCESS_REVIEW_EVERY must be empty or one of month, quarter" in result.stderr
