"""Approval stages as configuration (admin, bootstrap YAML), who can approve a request now,
and the refusal of a request nobody could approve."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import CommandError, call_command

from apps.access import services, stages
from apps.access.models import AccessRequest, Resource
from apps.access.services.resources import DefinitionError, apply_definitions
from apps.access.states import NotAllowed, PolicyViolation, RequestState
from tests.factories import ResourceFactory, UserFactory

pytestmark = pytest.mark.django_db

TWO_STAGES = [
    {"name": "Team lead", "groups": ["team-leads"], "count": 1},
    {"name": "Security", "groups": ["security"], "count": 1},
]


@pytest.fixture
def people() -> dict[str, Any]:
    return {
        "alice": UserFactory(username="idp|alice", email="alice@example.com", groups=["eng"]),
        "tina": UserFactory(
            username="idp|tina",
            email="tina@example.com",
            display_name="Tina",
            groups=["team-leads"],
        ),
        "sam": UserFactory(
            username="idp|sam", email="sam@example.com", display_name="Sam", groups=["security"]
        ),
    }


@pytest.fixture
def prod_db() -> Resource:
    return ResourceFactory(
        slug="prod-db",
        name="Prod DB",
        approver_groups=["team-leads", "security"],
        approval_stages=TWO_STAGES,
    )


def submit(person: Any, resource: Resource) -> AccessRequest:
    return services.submit_request(
        requester=person, resource=resource, duration_minutes=60, justification="Index fix INC-7"
    )


def test_stages_come_from_the_bootstrap_file(tmp_path: Path) -> None:
    path = tmp_path / "resources.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "resources": [
                    {
                        "slug": "prod-db",
                        "name": "Prod DB",
                        "approver_groups": ["team-leads", "security"],
                        "approval_stages": TWO_STAGES,
                        "levels": [
                            {
                                "slug": "read",
                                "name": "Read",
                                "rank": 1,
                                "approval_stages": TWO_STAGES[:1],
                            }
                        ],
                    }
                ]
            }
        )
    )
    call_command("bootstrap", str(path), stdout=io.StringIO())
    resource = Resource.objects.get(slug="prod-db")
    assert resource.approval_stages == TWO_STAGES
    level = resource.levels.get()
    assert [s.name for s in stages.stages_for(resource)] == ["Team lead", "Security"]
    assert [s.name for s in stages.stages_for(resource, level)] == ["Team lead"]


def test_a_stage_group_must_be_an_approver_group() -> None:
    with pytest.raises(DefinitionError, match="approval_stages: Stage 'Security' names security"):
        apply_definitions(
            [
                {
                    "slug": "prod-db",
                    "name": "Prod DB",
                    "approver_groups": ["team-leads"],
                    "approval_stages": TWO_STAGES,
                }
            ]
        )
    assert not Resource.objects.filter(slug="prod-db").exists()


@pytest.mark.parametrize(
    "bad",
    [
        {"name": "x", "groups": [], "count": 1},
        {"name": "", "groups": ["team-leads"], "count": 1},
        {"name": "x", "groups": ["team-leads"], "count": 0},
        {"name": "x", "groups": ["team-leads"], "count": True},
        {"name": "x", "groups": ["team-leads"], "count": 1, "order": 2},
        "team-leads",
    ],
)
def test_malformed_stages_are_refused(bad: Any) -> None:
    with pytest.raises(DefinitionError, match="approval_stages"):
        apply_definitions(
            [
                {
                    "slug": "x",
                    "name": "X",
                    "approver_groups": ["team-leads"],
                    "approval_stages": [bad],
                }
            ]
        )


def test_without_stages_the_quorum_is_the_one_stage() -> None:
    resource = ResourceFactory(approver_groups=["approvers"], approvals_required=2)
    (only,) = stages.stages_for(resource)
    assert (only.number, only.groups, only.count) == (1, ("approvers",), 2)


def test_who_can_approve_now_by_stage(people: dict[str, Any], prod_db: Resource) -> None:
    root = UserFactory(username="idp|root", email="root@example.com", is_superuser=True)
    req = submit(people["alice"], prod_db)
    waiting = stages.who_can_approve(req)
    assert [(s.stage.name, [p.email for p in who]) for s, who in waiting] == [
        ("Team lead", ["tina@example.com", root.email]),
        ("Security", ["sam@example.com", root.email]),
    ]


def test_the_requester_is_never_among_who_can_approve(prod_db: Resource) -> None:
    tina = UserFactory(username="idp|tina", email="tina@example.com", groups=["team-leads"])
    UserFactory(username="idp|tim", email="tim@example.com", groups=["team-leads"])
    UserFactory(username="idp|sam", email="sam@example.com", groups=["security"])
    req = submit(tina, prod_db)
    first, _ = stages.who_can_approve(req)
    assert [p.email for p in first[1]] == ["tim@example.com"]


def test_a_request_nobody_could_approve_is_refused_with_the_reason(
    people: dict[str, Any], prod_db: Resource
) -> None:
    people["sam"].groups.clear()  # security has nobody left
    with pytest.raises(PolicyViolation) as refused:
        submit(people["alice"], prod_db)
    assert str(refused.value).startswith(
        "Nobody can approve this request: Prod DB needs 1 of security in stage 2 (Security)"
    )
    assert not AccessRequest.objects.exists()


def test_the_only_approver_cannot_approve_their_own_request(prod_db: Resource) -> None:
    UserFactory(username="idp|sam", email="sam@example.com", groups=["security"])
    tina = UserFactory(username="idp|tina", email="tina@example.com", groups=["team-leads"])
    with pytest.raises(PolicyViolation, match="1 of team-leads in stage 1"):
        submit(tina, prod_db)


def test_a_superuser_can_always_approve(prod_db: Resource) -> None:
    UserFactory(username="idp|root", email="root@example.com", is_superuser=True)
    alice = UserFactory(username="idp|alice", email="alice@example.com")
    assert submit(alice, prod_db).state == RequestState.PENDING


def test_an_auto_approved_request_needs_nobody() -> None:
    resource = ResourceFactory(
        approver_groups=["approvers"], auto_approve_rules=[{"group": "eng", "max_minutes": 60}]
    )
    alice = UserFactory(username="idp|alice", email="alice@example.com", groups=["eng"])
    assert submit(alice, resource).state == RequestState.APPROVED


def test_the_api_and_the_page_show_who_can_approve(
    people: dict[str, Any], prod_db: Resource, as_user: Any
) -> None:
    client = as_user("idp|alice", "alice@example.com", groups=["eng"])
    req = submit(people["alice"], prod_db)
    answer = client.get(f"/api/v1/requests/{req.pk}").json()
    assert answer["approvals_required"] == 2
    assert [
        (s["number"], s["name"], s["count"], s["approvers"], s["complete"], s["can_approve"])
        for s in answer["stages"]
    ] == [
        (1, "Team lead", 1, [], False, ["tina@example.com"]),
        (2, "Security", 1, [], False, ["sam@example.com"]),
    ]
    assert client.get("/api/v1/requests").json()[0]["stages"] is None
    page = client.get(f"/requests/{req.pk}").content.decode()
    assert "Who can approve now" in page
    assert "Stage 1, Team lead: Tina" in page and "Stage 2, Security" in page and "Sam" in page


def test_bootstrap_refuses_a_bad_stage_with_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(
        "resources:\n  - {slug: x, name: X, approver_groups: [a], approval_stages: [{name: S}]}\n"
    )
    with pytest.raises(CommandError):
        call_command("bootstrap", str(path))


def test_the_admin_change_page_shows_the_stages(
    people: dict[str, Any], prod_db: Resource, as_user: Any
) -> None:
    req = submit(people["alice"], prod_db)
    admin = as_user("idp|root", "root@example.com", groups=["portal-admins"])
    page = admin.get(f"/admin/access/accessrequest/{req.pk}/change/").content.decode()
    assert "Stage 1, Team lead: 0 of 1 from team-leads<br>" in page
    assert "Stage 2, Security: 0 of 1 from security<br>" in page
    assert "Can approve stage 1 now: Tina" in page


# --- Deciding in stages ------------------------------------------------------------------


def approve(req: AccessRequest, person: Any) -> Any:
    req.refresh_from_db()
    return services.approve_request(req, approver=person)


def entries(action: str) -> list[dict[str, Any]]:
    from apps.audit.models import AuditEvent

    return [e.details for e in AuditEvent.objects.filter(action=action).order_by("seq")]


def test_stages_approve_in_order_and_the_trail_is_exact(
    people: dict[str, Any], prod_db: Resource
) -> None:
    req = submit(people["alice"], prod_db)
    assert approve(req, people["tina"]) is None
    (recorded,) = entries("request.approval_recorded")
    assert recorded["stage"] == 1 and (recorded["approvals"], recorded["required"]) == (1, 2)
    assert [s["approvers"] for s in recorded["stages"]] == [["tina@example.com"], []]
    grant = approve(req, people["sam"])
    assert grant is not None
    req.refresh_from_db()
    assert req.state == RequestState.APPROVED and req.decided_by == people["sam"]
    (approved,) = entries("request.approved")
    assert approved["approvers"] == ["tina@example.com", "sam@example.com"]
    assert approved["stages"] == [
        {
            "number": 1,
            "name": "Team lead",
            "groups": ["team-leads"],
            "count": 1,
            "approvers": ["tina@example.com"],
        },
        {
            "number": 2,
            "name": "Security",
            "groups": ["security"],
            "count": 1,
            "approvers": ["sam@example.com"],
        },
    ]
    assert list(req.approvals.order_by("pk").values_list("stage", flat=True)) == [1, 2]


def test_stage_two_before_stage_one_is_refused_and_records_nothing(
    people: dict[str, Any], prod_db: Resource
) -> None:
    req = submit(people["alice"], prod_db)
    with pytest.raises(NotAllowed, match=r"Stage 1 \(Team lead\) waits"):
        approve(req, people["sam"])
    assert not req.approvals.exists()
    assert entries("request.approval_recorded") == []
    # Once stage 1 is complete, the same person approves in stage 2.
    approve(req, people["tina"])
    assert approve(req, people["sam"]) is not None


def test_a_person_in_both_stages_counts_once(people: dict[str, Any], prod_db: Resource) -> None:
    both = UserFactory(
        username="idp|bea", email="bea@example.com", groups=["team-leads", "security"]
    )
    req = submit(people["alice"], prod_db)
    assert approve(req, both) is None  # stage 1, by Bea
    from apps.access.states import Conflict

    with pytest.raises(Conflict):
        approve(req, both)  # not again for stage 2
    # Her second account (the same email in another case) does not count twice either.
    alias = UserFactory(
        username="idp|bea2", email="Bea@Example.com", email_key=None, groups=["security"]
    )
    assert approve(req, alias) is None
    req.refresh_from_db()
    assert req.state == RequestState.PENDING
    (_, second) = entries("request.approval_recorded")
    assert second["not_counted"] == [
        {"approver": "Bea@Example.com", "reason": "the same person as an earlier approval"}
    ]
    assert approve(req, people["sam"]) is not None


def test_an_approval_stops_counting_when_its_approver_leaves_the_stage(
    people: dict[str, Any], prod_db: Resource
) -> None:
    req = submit(people["alice"], prod_db)
    approve(req, people["tina"])
    UserFactory(username="idp|tim", email="tim@example.com", groups=["team-leads"])
    people["tina"].groups.clear()
    # Stage 1 waits again: Sam is refused, Tim approves in stage 1, then Sam in stage 2.
    with pytest.raises(NotAllowed, match="Stage 1"):
        approve(req, people["sam"])
    tim = type(people["tina"]).objects.get(username="idp|tim")
    assert approve(req, tim) is None
    assert approve(req, people["sam"]) is not None


def test_without_stages_nothing_changes(people: dict[str, Any]) -> None:
    resource = ResourceFactory(approver_groups=["team-leads", "security"], approvals_required=2)
    req = submit(people["alice"], resource)
    assert approve(req, people["sam"]) is None  # any approver, in any order
    (recorded,) = entries("request.approval_recorded")
    assert "stage" not in recorded and "stages" not in recorded
    assert approve(req, people["tina"]) is not None
    assert "stages" not in entries("request.approved")[0]


def test_the_approve_page_lists_the_stages(
    people: dict[str, Any], prod_db: Resource, as_user: Any
) -> None:
    from apps.access import briefs

    req = submit(people["alice"], prod_db)
    approve(req, people["tina"])
    req = AccessRequest.objects.select_related("resource", "level", "approved_level").get(pk=req.pk)
    from datetime import UTC

    from django.utils import timezone

    (brief,) = briefs.request_briefs([req], zone=UTC, now=timezone.now())
    assert brief.needed == 2 and brief.counted == 1
    assert brief.stages == [
        "Stage 1, Team lead: 1 of 1 from team-leads (tina@example.com), done",
        "Stage 2, Security: 0 of 1 from security",
    ]
