"""Access review campaigns through their services: open, decide, remove, close, remind."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from apps.access.actions import AccessAction
from apps.access.models import Grant, Resource
from apps.access.states import GrantState, IllegalTransition, NotAllowed, PolicyViolation
from apps.audit.models import AuditEvent
from apps.notifications.models import Notification
from apps.reviews import events, services
from apps.reviews.actions import ReviewAction
from apps.reviews.models import Campaign, ItemKind, ReviewItem
from tests.factories import GrantFactory, ResourceFactory, UserFactory
from tests.reviews.conftest import ERIN_RULE, NOW, SRE_RULE

pytestmark = pytest.mark.django_db


def open_review(owner: Any, **kwargs: Any) -> Campaign:
    with time_machine.travel(NOW, tick=False):
        return services.open_campaign(
            owner=owner,
            actor=owner,
            name="Q4 review",
            due_at=NOW + timedelta(days=14),
            long_grant_minutes=4 * 60,
            **kwargs,
        )


def item(campaign: Campaign, kind: str, **subject: Any) -> ReviewItem:
    found = [
        i
        for i in campaign.items.filter(kind=kind)
        if not subject
        or subject.items()
        <= (i.subject.items() if isinstance(i.subject, dict) else {"value": i.subject}.items())
    ]
    assert len(found) == 1, [i.summary for i in campaign.items.filter(kind=kind)]
    return found[0]


def by_kind(campaign: Campaign) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for i in campaign.items.order_by("kind", "pk"):
        found.setdefault(i.kind, []).append(i.summary)
    return found


# --- opening ------------------------------------------------------------------------------


def test_a_campaign_has_one_item_per_fact_of_each_resource(grafana: Resource, carol: Any) -> None:
    ResourceFactory(slug="wiki", name="Wiki", approver_groups=["approvers"])

    campaign = open_review(carol)

    items = campaign.items.filter(resource=grafana)
    summaries = by_kind(campaign)
    assert summaries[ItemKind.REQUESTER_GROUP] == [
        "Group contractors may request (levels: Read-only, Full)",
        "Group engineering may request (levels: Read-only, Full)",
    ]
    assert summaries[ItemKind.APPROVER_GROUP][0].startswith("Group approvers approves requests")
    assert summaries[ItemKind.BREAK_GLASS_GROUP] == [
        "Group oncall may use break-glass (up to 1 hour)"
    ]
    assert summaries[ItemKind.AUTO_APPROVE_RULE] == [
        "Group oncall is approved automatically for up to 1 hour"
    ]
    assert [i.subject for i in items.filter(kind=ItemKind.BASE_RULE)] == [SRE_RULE, ERIN_RULE]
    (long,) = items.filter(kind=ItemKind.LONG_GRANT)
    assert long.summary.startswith("dave@example.com held access for 12 hours")
    (glass,) = items.filter(kind=ItemKind.BREAK_GLASS_USE)
    assert glass.summary.startswith("Break-glass by glass@example.com")
    assert items.count() == 9  # the 1-hour grant is no item
    # The wiki names no requester group: everyone may request it.
    assert summaries[ItemKind.EVERYONE] == ["Everyone signed in may request"]
    # Reviewers: the approvers; the approver groups themselves go to the superusers.
    assert item(campaign, ItemKind.BASE_RULE, allow=SRE_RULE["allow"]).reviewer_groups == [
        "approvers"
    ]
    assert all(i.reviewer_groups == [] for i in campaign.items.filter(kind=ItemKind.APPROVER_GROUP))
    entry = AuditEvent.objects.get(action=ReviewAction.CAMPAIGN_OPENED)
    assert entry.actor_label == "carol@example.com"
    assert entry.details["items"] == 11 and entry.details["resources"] == "all"


def test_chosen_resources_and_a_named_reviewer_group(grafana: Resource, carol: Any) -> None:
    ResourceFactory(slug="wiki")

    campaign = open_review(carol, resources=[grafana], reviewer_group="security")

    assert set(campaign.items.values_list("resource_slug", flat=True)) == {"grafana"}
    assert {tuple(g) for g in campaign.items.values_list("reviewer_groups", flat=True)} == {
        ("security",)
    }
    assert list(campaign.resources.values_list("slug", flat=True)) == ["grafana"]


def test_only_auditors_and_superusers_open_reviews(grafana: Resource, bob: Any) -> None:
    with pytest.raises(NotAllowed):
        open_review(bob)
    assert not Campaign.objects.exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"name": " "}, "name"), ({"due_at": NOW - timedelta(days=1)}, "future")],
)
def test_bad_input_changes_nothing(
    grafana: Resource, carol: Any, kwargs: Any, message: str
) -> None:
    values = {"owner": carol, "name": "Q4", "due_at": NOW + timedelta(days=1), **kwargs}
    with time_machine.travel(NOW, tick=False), pytest.raises(PolicyViolation, match=message):
        services.open_campaign(**values)
    assert not Campaign.objects.exists() and not ReviewItem.objects.exists()


def test_since_the_last_review_only(grafana: Resource, carol: Any, bob: Any) -> None:
    first = open_review(carol)
    services.close_campaign(first, actor=carol)
    with time_machine.travel(NOW + timedelta(days=30), tick=False):
        second = services.open_campaign(
            owner=carol, name="next", due_at=NOW + timedelta(days=40), long_grant_minutes=240
        )

    assert second.period_start == first.opened_at
    kinds = set(second.items.values_list("kind", flat=True))
    assert ItemKind.LONG_GRANT not in kinds and ItemKind.BREAK_GLASS_USE not in kinds
    assert ItemKind.BASE_RULE in kinds  # standing facts are certified every time


# --- deciding -----------------------------------------------------------------------------


def test_keep_is_recorded_and_final(grafana: Resource, carol: Any, bob: Any) -> None:
    campaign = open_review(carol)
    target = item(campaign, ItemKind.BREAK_GLASS_GROUP)

    services.decide_item(target, reviewer=bob, decision="keep", comment="on call needs it")

    target.refresh_from_db()
    assert target.decision == "keep" and target.decided_by == bob and target.outcome == ""
    entry = AuditEvent.objects.get(action=ReviewAction.ITEM_DECIDED)
    assert entry.actor_label == "bob@example.com" and entry.target_id == str(target.pk)
    assert entry.details["decision"] == "keep" and entry.details["comment"] == "on call needs it"
    with pytest.raises(IllegalTransition, match="already decided"):
        services.decide_item(target, reviewer=bob, decision="remove", comment="changed my mind")


def test_remove_a_base_rule_changes_the_policy_through_the_resource_service(
    grafana: Resource, carol: Any, bob: Any
) -> None:
    from apps.pomerium.desired import desired_policy

    campaign = open_review(carol)
    target = item(campaign, ItemKind.BASE_RULE, allow=SRE_RULE["allow"])
    generation = grafana.sync_generation
    assert "sre" in str(desired_policy(grafana, timezone.now()))

    services.decide_item(target, reviewer=bob, decision="remove", comment="SREs use JIT now")

    grafana.refresh_from_db()
    assert grafana.base_ppl == [ERIN_RULE]
    assert grafana.sync_generation == generation + 1  # the policy is re-synced
    assert "sre" not in str(desired_policy(grafana, timezone.now()))
    changed = AuditEvent.objects.get(action=AccessAction.RESOURCE_CHANGED)
    assert changed.actor_label == "bob@example.com"
    assert changed.details["changes"]["base_ppl"] == [[SRE_RULE, ERIN_RULE], [ERIN_RULE]]
    decided = AuditEvent.objects.get(action=ReviewAction.ITEM_DECIDED)
    assert decided.details["outcome"] == "removed from base_ppl"
    assert decided.seq == changed.seq + 1  # one transaction, the change first


def test_remove_a_requester_group_and_refuse_removing_the_last(
    grafana: Resource, carol: Any, bob: Any
) -> None:
    campaign = open_review(carol)

    services.decide_item(
        item(campaign, ItemKind.REQUESTER_GROUP, value="contractors"),
        reviewer=bob,
        decision="remove",
        comment="contract ended",
    )
    grafana.refresh_from_db()
    assert grafana.requester_groups == ["engineering"]

    last = item(campaign, ItemKind.REQUESTER_GROUP, value="engineering")
    with pytest.raises(PolicyViolation, match="everyone signed in"):
        services.decide_item(last, reviewer=bob, decision="remove", comment="nobody")
    last.refresh_from_db()
    grafana.refresh_from_db()
    assert last.decision == "" and grafana.requester_groups == ["engineering"]


def test_remove_everyone_archives_the_resource(carol: Any, bob: Any) -> None:
    wiki = ResourceFactory(slug="wiki", approver_groups=["approvers"], requester_groups=[])
    campaign = open_review(carol, resources=[wiki])

    services.decide_item(
        item(campaign, ItemKind.EVERYONE), reviewer=bob, decision="remove", comment="unused"
    )

    wiki.refresh_from_db()
    assert not wiki.is_active


def test_remove_an_open_long_grant_revokes_it(grafana: Resource, carol: Any, bob: Any) -> None:
    holder = UserFactory(email="holder@example.com")
    with time_machine.travel(NOW, tick=False):
        grant = GrantFactory(
            resource=grafana,
            request__resource=grafana,
            user=holder,
            request__requester=holder,
            not_before=NOW - timedelta(hours=1),
            expires_at=NOW + timedelta(hours=20),
        )
    campaign = open_review(carol)
    target = item(campaign, ItemKind.LONG_GRANT, grant=grant.pk)

    with time_machine.travel(NOW + timedelta(hours=1), tick=False):
        services.decide_item(target, reviewer=bob, decision="remove", comment="too long")

    grant.refresh_from_db()
    assert grant.state == GrantState.REVOKED and grant.revoked_by == bob
    assert grant.revoke_reason == "Access review 'Q4 review': too long"
    assert AuditEvent.objects.filter(action=AccessAction.GRANT_REVOKED).count() == 1
    target.refresh_from_db()
    assert target.outcome == f"revoked grant #{grant.pk}"
    ended = item(campaign, ItemKind.LONG_GRANT, email="dave@example.com")
    services.decide_item(ended, reviewer=bob, decision="remove", comment="was too long")
    ended.refresh_from_db()
    assert ended.outcome.startswith("the grant had already ended")


def test_remove_needs_a_comment(grafana: Resource, carol: Any, bob: Any) -> None:
    campaign = open_review(carol)
    with pytest.raises(PolicyViolation, match="why"):
        services.decide_item(
            item(campaign, ItemKind.BREAK_GLASS_GROUP),
            reviewer=bob,
            decision="remove",
            comment="  ",
        )


# --- self-review ------------------------------------------------------------------------------


def test_nobody_reviews_an_item_that_concerns_them(
    grafana: Resource, carol: Any, eve: Any, dave: Any, root: Any
) -> None:
    campaign = open_review(carol)
    erin = UserFactory(username="idp|erin", email="Erin@Example.com", groups=["approvers"])
    cases = [
        (eve, item(campaign, ItemKind.REQUESTER_GROUP, value="engineering")),  # her group
        (erin, item(campaign, ItemKind.BASE_RULE, allow=ERIN_RULE["allow"])),  # her email
    ]
    dave.groups.add(*UserFactory(groups=["approvers"]).groups.all())
    dave.refresh_from_db()
    cases.append((dave, item(campaign, ItemKind.LONG_GRANT, email="dave@example.com")))  # his grant
    for person, target in cases:
        with pytest.raises(NotAllowed, match="concerns you"):
            services.decide_item(target, reviewer=person, decision="keep")
    # ... while the same people decide the rest, and a superuser decides theirs.
    services.decide_item(
        item(campaign, ItemKind.REQUESTER_GROUP, value="contractors"), reviewer=eve, decision="keep"
    )
    services.decide_item(cases[0][1], reviewer=root, decision="keep")
    assert not AuditEvent.objects.filter(
        action=ReviewAction.ITEM_DECIDED, actor_label__in=["erin@example.com", "dave@example.com"]
    ).exists()


def test_approvers_do_not_certify_approver_groups_and_strangers_review_nothing(
    grafana: Resource, carol: Any, bob: Any, root: Any
) -> None:
    campaign = open_review(carol)
    approvers = item(campaign, ItemKind.APPROVER_GROUP)
    stranger = UserFactory(email="x@example.com", groups=["marketing"])

    with pytest.raises(NotAllowed, match="not a reviewer"):
        services.decide_item(approvers, reviewer=bob, decision="keep")
    with pytest.raises(NotAllowed, match="not a reviewer"):
        services.decide_item(
            item(campaign, ItemKind.BREAK_GLASS_GROUP), reviewer=stranger, decision="keep"
        )
    services.decide_item(approvers, reviewer=root, decision="keep")


# --- visibility -------------------------------------------------------------------------------


def test_one_rule_for_who_sees_which_item(
    grafana: Resource, carol: Any, bob: Any, root: Any
) -> None:
    other = ResourceFactory(slug="db", approver_groups=["dbas"])
    campaign = open_review(carol)
    dba = UserFactory(email="dba@example.com", groups=["dbas"])
    stranger = UserFactory(email="x@example.com", groups=["marketing"])

    assert ReviewItem.objects.restrict(carol).count() == campaign.items.count()
    assert ReviewItem.objects.restrict(root).count() == campaign.items.count()
    assert set(ReviewItem.objects.restrict(dba).values_list("resource", flat=True)) == {other.pk}
    assert not ReviewItem.objects.restrict(bob).filter(resource=other).exists()
    assert not ReviewItem.objects.restrict(stranger).exists()
    assert list(Campaign.objects.restrict(dba)) == [campaign]
    assert not Campaign.objects.restrict(stranger).exists()


# --- closing and reminders ------------------------------------------------------------------


def test_close_counts_and_freezes_the_campaign(grafana: Resource, carol: Any, bob: Any) -> None:
    campaign = open_review(carol)
    services.decide_item(item(campaign, ItemKind.BREAK_GLASS_GROUP), reviewer=bob, decision="keep")

    with time_machine.travel(NOW + timedelta(days=20), tick=False):
        services.close_campaign(campaign, actor=carol)

    closed = AuditEvent.objects.get(action=ReviewAction.CAMPAIGN_CLOSED)
    assert closed.details["kept"] == 1 and closed.details["undecided"] == 8
    assert closed.details["overdue"] == 8
    with pytest.raises(IllegalTransition, match="closed"):
        services.decide_item(
            item(campaign, ItemKind.AUTO_APPROVE_RULE), reviewer=bob, decision="keep"
        )
    with pytest.raises(IllegalTransition):
        services.close_campaign(campaign, actor=carol)
    with pytest.raises(NotAllowed):
        services.close_campaign(open_review(carol), actor=bob)


def test_reminders_before_the_due_date_and_to_the_owner_when_overdue(
    grafana: Resource,
    carol: Any,
    bob: Any,
    eve: Any,
    django_capture_on_commit_callbacks: Any,
    settings: Any,
) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = True  # the notice tasks run here
    with django_capture_on_commit_callbacks(execute=True):
        campaign = open_review(carol)
    opened = Notification.objects.filter(event=events.REVIEW_OPENED)
    # Bob and Eve approve grafana; the superusers review the approver group (none exist here).
    assert sorted(opened.values_list("recipient", flat=True)) == [
        "bob@example.com",
        "eve@example.com",
    ]

    with django_capture_on_commit_callbacks(execute=True):
        assert services.send_reminders(NOW + timedelta(days=5)) == {
            "review_reminders": 0,
            "review_overdue": 0,
        }
        assert services.send_reminders(NOW + timedelta(days=12))["review_reminders"] == 1
        assert services.send_reminders(NOW + timedelta(days=12, hours=1))["review_reminders"] == 0
    reminders = Notification.objects.filter(event=events.REVIEW_REMINDER)
    assert reminders.count() == 2
    assert "still undecided" in reminders.get(recipient="bob@example.com").body

    with django_capture_on_commit_callbacks(execute=True):
        assert services.send_reminders(NOW + timedelta(days=15))["review_overdue"] == 1
        assert services.send_reminders(NOW + timedelta(days=16))["review_overdue"] == 0
    overdue = Notification.objects.filter(event=events.REVIEW_OVERDUE)
    assert sorted(overdue.values_list("recipient", flat=True)) == [
        "bob@example.com",
        "carol@example.com",
        "eve@example.com",
    ]
    assert "nothing is removed by default" in overdue.get(recipient="carol@example.com").body
    # Overdue items stay open and are listed.
    assert ReviewItem.objects.overdue(NOW + timedelta(days=15)).count() == 9
    assert campaign.items.filter(decision="").count() == 9


def test_no_reminder_when_everything_is_decided(grafana: Resource, carol: Any, root: Any) -> None:
    campaign = open_review(carol, resources=[grafana], reviewer_group="portal-admins")
    for target in campaign.items.all():
        services.decide_item(target, reviewer=root, decision="keep")
    assert services.send_reminders(NOW + timedelta(days=20)) == {
        "review_reminders": 0,
        "review_overdue": 0,
    }


def test_grant_names_come_from_the_trail(grafana: Resource, carol: Any, bob: Any) -> None:
    from apps.access import services as access

    holder = UserFactory(email="old-name@example.com", groups=["engineering"])
    req = access.submit_request(
        requester=holder,
        resource=grafana,
        duration_minutes=720,
        justification="Long maintenance window",
    )
    access.approve_request(req, approver=bob)
    holder.email = "new-name@example.com"
    holder.save()
    Grant.objects.filter(user=holder).update(email="new-name@example.com")

    with time_machine.travel(timezone.now() + timedelta(minutes=1), tick=False):
        campaign = services.open_campaign(
            owner=carol, name="n", due_at=timezone.now() + timedelta(days=3), long_grant_minutes=240
        )

    long = campaign.items.get(kind=ItemKind.LONG_GRANT, subject__grant=req.grant.pk)
    assert long.summary.startswith("old-name@example.com held access at Full for 12 hours")
    assert long.subject_emails == ["old-name@example.com"]
