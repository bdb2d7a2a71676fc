"""Access levels and schedules in the services: per-level maxima, quorum, auto-approval,
lowering by the approver, upgrade by extension, and the audit rows that carry them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from apps import ppl
from apps.access import services
from apps.access.actions import AccessAction
from apps.access.models import AccessLevel, AccessRequest, Grant, Resource
from apps.access.states import GrantState, PolicyViolation, RequestKind, RequestState
from apps.audit.models import AuditEvent
from apps.pomerium.desired import desired_policy
from tests.factories import AccessLevelFactory, ResourceFactory, UserFactory

# Requests need somebody able to approve them (a request nobody could approve is refused).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("standby_approver")]

T0 = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)  # a Tuesday
READ_ONLY = [{"http_method": {"in": ["GET", "HEAD", "OPTIONS"]}}]
BERLIN_WEEKDAYS = {
    "days": "mon-fri",
    "after": "09:00",
    "before": "17:00",
    "timezone": "Europe/Berlin",
}


@pytest.fixture
def grafana() -> Resource:
    return ResourceFactory(
        slug="grafana", name="Grafana", approvals_required=2, duration_choices=[60, 240, 480]
    )


@pytest.fixture
def levels(grafana: Resource) -> dict[str, AccessLevel]:
    return {
        "read": AccessLevelFactory(
            resource=grafana,
            slug="read-only",
            name="Read-only",
            rank=10,
            criteria=READ_ONLY,
            max_duration_minutes=240,
            approvals_required=1,
            auto_approve_rules=[{"group": "engineering", "max_minutes": 240}],
        ),
        "full": AccessLevelFactory(
            resource=grafana, slug="full", name="Full", rank=20, auto_approve_rules=[]
        ),
    }


def ask(
    user: Any, resource: Resource, level: AccessLevel | None, minutes: int = 60
) -> AccessRequest:
    return services.submit_request(
        requester=user,
        resource=resource,
        level=level,
        duration_minutes=minutes,
        justification="Looking at the dashboards for INC-1",
        now=T0,
    )


def details(action: str) -> list[dict[str, Any]]:
    return [e.details for e in AuditEvent.objects.filter(action=action).order_by("pk")]


def test_read_only_within_its_maximum_is_auto_approved_with_its_criteria(grafana, levels, alice):
    req = ask(alice, grafana, levels["read"], 240)

    assert req.state == RequestState.APPROVED
    grant = Grant.objects.get(request=req)
    assert grant.level == levels["read"]
    assert grant.criteria == READ_ONLY
    assert details(AccessAction.REQUEST_SUBMITTED)[0]["level"] == "read-only"
    assert details(AccessAction.REQUEST_AUTO_APPROVED)[0]["level"] == "read-only"
    assert details(AccessAction.GRANT_ACTIVATED)[0]["level"] == "read-only"
    rule = desired_policy(grafana, T0)[0]
    assert rule == {
        "allow": {
            "and": [
                {"email": {"is": "alice@example.com"}},
                {"date": {"after": "2026-11-24T09:30:00Z", "before": "2026-11-24T13:30:00Z"}},
                {"http_method": {"in": ["GET", "HEAD", "OPTIONS"]}},
            ]
        }
    }


def test_each_level_has_its_own_maximum(grafana, levels, alice, bob, erin):
    with pytest.raises(PolicyViolation, match="at most 240 minutes at the level Read-only"):
        ask(alice, grafana, levels["read"], 480)
    assert ask(alice, grafana, levels["full"], 480).state == RequestState.PENDING


def test_no_level_asks_for_the_highest_and_only_own_levels_count(grafana, levels, alice, bob, erin):
    assert ask(alice, grafana, None).level == levels["full"]
    AccessRequest.objects.all().delete()
    other = AccessLevelFactory(resource=ResourceFactory(slug="other"), slug="x", rank=1)
    with pytest.raises(PolicyViolation, match="does not belong"):
        ask(alice, grafana, other)
    assert AccessRequest.objects.count() == 0
    assert AuditEvent.objects.filter(action=AccessAction.REQUEST_SUBMITTED).count() == 1


def test_full_access_needs_its_quorum_and_is_not_auto_approved(grafana, levels, alice, bob, erin):
    req = ask(alice, grafana, levels["full"], 60)
    assert req.state == RequestState.PENDING

    assert services.approve_request(req, approver=bob, now=T0) is None
    grant = services.approve_request(req, approver=erin, now=T0)

    assert grant is not None and grant.level == levels["full"] and grant.criteria == []
    assert details(AccessAction.REQUEST_APPROVED)[0]["level"] == "full"


def test_the_approver_may_lower_the_level_never_raise_it(grafana, levels, alice, bob):
    alice.groups.clear()  # no auto-approval
    req = ask(alice, grafana, levels["read"], 60)
    with pytest.raises(PolicyViolation, match="lower"):
        services.approve_request(req, approver=bob, level=levels["full"], now=T0)
    assert Grant.objects.count() == 0

    full = ask(UserFactory(email="carol@example.com"), grafana, levels["full"], 60)
    grant = services.approve_request(full, approver=bob, level=levels["read"], now=T0)

    # Read-only needs one approval: bob's lowering is enough.
    assert grant is not None and grant.level == levels["read"] and grant.criteria == READ_ONLY
    (approved,) = details(AccessAction.REQUEST_APPROVED)
    assert approved["level"] == "read-only" and approved["level_asked"] == "full"


def test_upgrade_by_extension_keeps_one_rule_with_the_new_level(grafana, levels, alice, bob, erin):
    read = ask(alice, grafana, levels["read"], 60)
    grant = Grant.objects.get(request=read)

    upgrade = ask(alice, grafana, levels["full"], 60)
    assert upgrade.kind == RequestKind.EXTENSION and upgrade.state == RequestState.PENDING
    services.approve_request(upgrade, approver=bob, now=T0)
    services.approve_request(upgrade, approver=erin, now=T0)

    grant.refresh_from_db()
    assert grant.level == levels["full"] and grant.criteria == []
    assert grant.expires_at == T0 + timedelta(minutes=120)
    (extended,) = details(AccessAction.GRANT_EXTENDED)
    assert extended["old_level"] == "read-only" and extended["level"] == "full"
    rules = [r for r in desired_policy(grafana, T0) if "alice@" in ppl.dumps(r)]
    assert len(rules) == 1 and "http_method" not in ppl.dumps(rules)


def test_an_extension_without_a_level_keeps_the_grants_level(grafana, levels, alice):
    ask(alice, grafana, levels["read"], 60)
    again = ask(alice, grafana, None, 60)
    assert again.level == levels["read"] and again.state == RequestState.APPROVED
    assert Grant.objects.get().criteria == READ_ONLY


def test_the_grant_keeps_the_criteria_it_was_approved_with(grafana, levels, alice):
    ask(alice, grafana, levels["read"], 60)
    before = ppl.dumps(desired_policy(grafana, T0))
    levels["read"].criteria = [{"http_method": {"in": ["GET"]}}]
    levels["read"].save()
    assert ppl.dumps(desired_policy(grafana, T0)) == before


def test_break_glass_gets_the_highest_level_and_no_schedule(grafana, levels):
    grafana.break_glass_groups = ["oncall"]
    grafana.schedule = BERLIN_WEEKDAYS
    grafana.save()
    dave = UserFactory(email="dave@example.com", groups=["oncall"])
    grant = services.break_glass(
        user=dave, resource=grafana, duration_minutes=60, justification="prod is down, INC-9"
    )
    assert grant.level == levels["full"] and grant.criteria == [] and grant.schedule is None


def test_a_schedule_is_copied_onto_the_grant_and_rendered_after_the_level(grafana, levels, alice):
    grafana.schedule = BERLIN_WEEKDAYS
    grafana.save()
    req = ask(alice, grafana, levels["read"], 240)
    grant = Grant.objects.get(request=req)
    assert grant.schedule == BERLIN_WEEKDAYS
    assert grant.criteria == [
        *READ_ONLY,
        {"day_of_week": "mon-fri"},
        {"time_of_day": {"timezone": "Europe/Berlin", "after": "09:00", "before": "17:00"}},
    ]
    assert details(AccessAction.REQUEST_SUBMITTED)[0]["schedule"] == BERLIN_WEEKDAYS
    assert details(AccessAction.GRANT_ACTIVATED)[0]["schedule"] == BERLIN_WEEKDAYS
    assert grant.state == GrantState.ACTIVE


def test_without_levels_or_schedule_nothing_changes_in_the_rows(alice):
    plain = ResourceFactory(
        slug="plain", auto_approve_rules=[{"group": "engineering", "max_minutes": 60}]
    )
    ask(alice, plain, None, 60)
    for action in (AccessAction.REQUEST_SUBMITTED, AccessAction.GRANT_ACTIVATED):
        (row,) = details(action)
        assert "level" not in row and "schedule" not in row
    grant = Grant.objects.get()
    assert grant.level is None and grant.criteria == [] and grant.schedule is None


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("criteria", [{"http_mthod": "GET"}], "unknown criterion"),
        ("criteria", [{"email": "x@example.com"}], "written by the portal"),
        ("criteria", {"http_method": "GET"}, "must be a list"),
        ("auto_approve_rules", [{"group": "x"}], "A list like"),
        ("max_duration_minutes", 10_000, "resource's maximum"),
    ],
)
def test_bad_levels_are_refused_with_a_clear_error(grafana, field, value, message):
    level = AccessLevel(resource=grafana, slug="bad", name="Bad", rank=1, **{field: value})
    with pytest.raises(ValidationError, match=message):
        level.full_clean()


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ({"days": "mon-fri", "after": "09:00", "before": "17:00"}, "needs timezone"),
        ({**BERLIN_WEEKDAYS, "timezone": "Mars/Olympus"}, "unknown time zone"),
        ({**BERLIN_WEEKDAYS, "days": "mon-frx"}, "not a day of the week"),
        ({**BERLIN_WEEKDAYS, "after": "18:00"}, "earlier than before"),
        ({**BERLIN_WEEKDAYS, "after": "9am"}, "24-hour time"),
        ({**BERLIN_WEEKDAYS, "timezone": "America/Los_Angeles"}, "crosses midnight UTC"),
        ({**BERLIN_WEEKDAYS, "extra": 1}, "unknown schedule key"),
    ],
)
def test_bad_schedules_are_refused_with_a_clear_error(grafana, schedule, message):
    grafana.schedule = schedule
    with pytest.raises(ValidationError, match=message):
        grafana.full_clean()
