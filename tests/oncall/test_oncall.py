"""On call from PagerDuty and Opsgenie, read live over HTTP from the stand-in: the person on
call is auto-approved (the trail names the schedule and the entry), the same person off
call waits for an approver, and a provider that cannot answer fails closed, saying why."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from apps.access import services
from apps.access.models import Resource
from apps.access.states import RequestState
from apps.audit.models import AuditEvent
from apps.oncall import cache
from devtools.oncallsim.simulator import OnCallPerson, OnCallSimulator, Schedule
from tests.factories import ResourceFactory, UserFactory

# Requests need somebody able to approve them (a request nobody could approve is refused).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("standby_approver")]

RULE = {"oncall": {"provider": "pagerduty", "schedule": "P123ABC"}, "max_minutes": 240}


@pytest.fixture
def sim(settings: Any) -> Iterator[OnCallSimulator]:
    simulator = OnCallSimulator(pagerduty_token="pd-token-1", opsgenie_key="og-key-1").start()
    settings.PAGERDUTY_TOKEN = "pd-token-1"
    settings.PAGERDUTY_API_URL = simulator.url
    settings.OPSGENIE_API_KEY = "og-key-1"
    settings.OPSGENIE_API_URL = simulator.url
    settings.ONCALL_TIMEOUT_SECONDS = 2.0
    cache.forget()
    yield simulator
    cache.forget()
    simulator.stop()


def on_call(
    sim: OnCallSimulator,
    *people: tuple[str, str, str],
    provider: str = "pagerduty",
    schedule: str = "P123ABC",
) -> None:
    sim.set_schedule(
        Schedule(
            provider=provider,
            id=schedule if provider == "pagerduty" else "2c2e3b8c-0000-4000-8000-00000000000a",
            name=schedule,
            on_call=[OnCallPerson(id=i, name=n, email=e, level=1) for i, n, e in people],
        )
    )


@pytest.fixture
def dave() -> Any:
    return UserFactory(username="idp|dave", email="dave@example.com", groups=["eng"])


@pytest.fixture
def grafana() -> Resource:
    return ResourceFactory(slug="grafana", name="Grafana admin", auto_approve_rules=[RULE])


def submit(user: Any, resource: Resource, minutes: int = 60) -> Any:
    return services.submit_request(
        requester=user,
        resource=resource,
        duration_minutes=minutes,
        justification="Paged for the disk alerts",
    )


def test_the_person_on_call_is_auto_approved_and_the_trail_names_the_entry(
    sim: OnCallSimulator, dave: Any, grafana: Resource
) -> None:
    # PagerDuty holds the address in another case: one person under any alias.
    on_call(sim, ("PUSER01", "Dave", "Dave@Example.com"), ("PUSER02", "Erin", "erin@example.com"))
    req = submit(dave, grafana)
    req.refresh_from_db()
    assert req.state == RequestState.APPROVED and req.decided_by is None
    entry = AuditEvent.objects.get(action="request.auto_approved")
    matched = entry.details["rule"]["matched"]
    assert entry.details["rule"]["oncall"] == {"provider": "pagerduty", "schedule": "P123ABC"}
    assert matched["provider"] == "pagerduty" and matched["schedule"] == "P123ABC"
    assert matched["email"] == "Dave@Example.com" and matched["user_id"] == "PUSER01"
    assert matched["escalation_policy"] == "PPOLICY1" and matched["escalation_level"] == 1
    assert matched["start"].endswith("Z") and matched["end"].endswith("Z")
    assert req.auto_approval_note == ""
    (asked,) = sim.requests
    assert asked["path"] == "/oncalls"
    assert asked["query"]["schedule_ids[]"] == ["P123ABC"]
    assert asked["query"]["include[]"] == ["users"]


def test_the_same_person_off_call_waits_for_an_approver(
    sim: OnCallSimulator, dave: Any, grafana: Resource
) -> None:
    on_call(sim, ("PUSER02", "Erin", "erin@example.com"))
    req = submit(dave, grafana)
    assert req.state == RequestState.PENDING
    assert req.auto_approval_note == ""
    assert not AuditEvent.objects.filter(action="request.auto_approved").exists()


def test_longer_than_the_rule_allows_waits_even_on_call(
    sim: OnCallSimulator, dave: Any, grafana: Resource
) -> None:
    on_call(sim, ("PUSER01", "Dave", "dave@example.com"))
    grafana.duration_choices = [60, 480]
    grafana.save()
    assert submit(dave, grafana, minutes=480).state == RequestState.PENDING


@pytest.mark.parametrize(
    ("breakage", "says"),
    [
        ("outage", "PagerDuty could not say who is on call for schedule P123ABC (HTTP 503"),
        ("token", "(PagerDuty refused the token (HTTP 401))"),
        ("ratelimit", "(PagerDuty's rate limit was reached (HTTP 429))"),
        ("down", "(could not connect (ConnectionError))"),
    ],
)
def test_a_provider_that_cannot_answer_fails_closed_and_the_request_says_why(
    sim: OnCallSimulator, dave: Any, grafana: Resource, settings: Any, breakage: str, says: str
) -> None:
    on_call(sim, ("PUSER01", "Dave", "dave@example.com"))
    if breakage == "outage":
        sim.outage = True
    elif breakage == "token":
        settings.PAGERDUTY_TOKEN = "wrong-token"
    elif breakage == "ratelimit":
        sim.pending_limits = 1
    else:
        settings.PAGERDUTY_API_URL = "http://127.0.0.1:9"  # nothing listens there
    req = submit(dave, grafana)
    assert req.state == RequestState.PENDING
    assert req.auto_approval_note.startswith("Not auto-approved: ")
    assert says in req.auto_approval_note
    assert req.auto_approval_note.endswith("An approver decides instead.")
    assert "pd-token-1" not in req.auto_approval_note
    submitted = AuditEvent.objects.get(action="request.submitted")
    assert submitted.details["auto_approval_note"] == req.auto_approval_note


def test_answers_are_kept_at_most_a_minute(
    sim: OnCallSimulator, grafana: Resource, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.ONCALL_CACHE_SECONDS = 600  # capped at 60 all the same
    on_call(sim, ("PUSER01", "Dave", "dave@example.com"))
    clock = [1000.0]
    monkeypatch.setattr(cache.time, "monotonic", lambda: clock[0])
    people = [UserFactory(email=f"p{i}@example.com") for i in range(3)]
    submit(people[0], grafana)
    clock[0] += 59
    submit(people[1], grafana)
    assert len(sim.requests) == 1
    clock[0] += 2
    submit(people[2], grafana)
    assert len(sim.requests) == 2


def test_a_failure_is_not_kept(sim: OnCallSimulator, dave: Any, grafana: Resource) -> None:
    on_call(sim, ("PUSER01", "Dave", "dave@example.com"))
    sim.outage = True
    assert submit(dave, grafana).state == RequestState.PENDING
    sim.outage = False
    services.cancel_request(dave.access_requests.get(), actor=dave)
    assert submit(dave, grafana).state == RequestState.APPROVED


def test_opsgenie_works_the_same_way(sim: OnCallSimulator, dave: Any) -> None:
    on_call(sim, ("u1", "dave", "dave@example.com"), provider="opsgenie", schedule="SRE Primary")
    resource = ResourceFactory(
        auto_approve_rules=[
            {"oncall": {"provider": "opsgenie", "schedule": "SRE Primary"}, "max_minutes": 60}
        ]
    )
    req = submit(dave, resource)
    assert req.state == RequestState.APPROVED
    matched = AuditEvent.objects.get(action="request.auto_approved").details["rule"]["matched"]
    assert matched["provider"] == "opsgenie" and matched["email"] == "dave@example.com"
    (asked,) = sim.requests
    assert asked["query"] == {"scheduleIdentifierType": ["name"], "flat": ["true"]}


def test_a_group_rule_still_works_beside_an_on_call_rule(sim: OnCallSimulator) -> None:
    sim.outage = True
    resource = ResourceFactory(auto_approve_rules=[RULE, {"group": "oncall", "max_minutes": 60}])
    person = UserFactory(email="o@example.com", groups=["oncall"])
    req = submit(person, resource)
    assert req.state == RequestState.APPROVED
    assert req.auto_approval_note == ""  # approved by the group rule: nothing to explain


@pytest.mark.parametrize(
    "rule",
    [
        {"oncall": {"provider": "victorops", "schedule": "X"}, "max_minutes": 60},
        {"oncall": {"provider": "pagerduty"}, "max_minutes": 60},
        {"oncall": {"provider": "pagerduty", "schedule": ""}, "max_minutes": 60},
        {"oncall": {"provider": "pagerduty", "schedule": "P1"}, "group": "x", "max_minutes": 60},
        {"oncall": {"provider": "pagerduty", "schedule": "P1"}, "max_minutes": 0},
        {"oncall": "P123ABC", "max_minutes": 60},
    ],
)
def test_malformed_on_call_rules_are_refused(rule: dict[str, Any]) -> None:
    resource = ResourceFactory.build(slug="bad", name="Bad", auto_approve_rules=[rule])
    with pytest.raises(ValidationError) as caught:
        resource.clean()
    assert "auto_approve_rules" in caught.value.message_dict


def test_the_request_page_and_the_api_say_why_it_waits(
    sim: OnCallSimulator, as_user: Any, grafana: Resource
) -> None:
    sim.outage = True
    client = as_user("idp|dave", "dave@example.com", groups=["eng"])
    client.get("/")  # first sign-in creates the person
    from apps.accounts.models import User

    req = submit(User.objects.get(username="idp|dave"), grafana)
    page = client.get(f"/requests/{req.pk}").content.decode()
    assert "Auto-approval" in page and "could not say who is on call" in page
    answer = client.get(f"/api/v1/requests/{req.pk}").json()
    assert answer["auto_approval_note"] == req.auto_approval_note
