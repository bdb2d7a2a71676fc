"""The reviewer's page and the campaigns' admin, signed in through Pomerium."""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from apps.access.models import Resource
from apps.audit.models import AuditAction, AuditEvent
from apps.reviews import services
from apps.reviews.actions import ReviewAction
from apps.reviews.models import Campaign, ItemKind, ReviewItem
from tests.factories import ResourceFactory, UserFactory
from tests.reviews.conftest import SRE_RULE

pytestmark = pytest.mark.django_db


@pytest.fixture
def wiki() -> Resource:
    return ResourceFactory(
        slug="wiki",
        name="Wiki",
        requester_groups=["engineering", "contractors"],
        approver_groups=["approvers"],
        base_ppl=[SRE_RULE],
    )


@pytest.fixture
def campaign(wiki: Resource) -> Campaign:
    owner = UserFactory(username="idp|carol", email="carol@example.com", groups=["compliance"])
    return services.open_campaign(
        owner=owner, name="Q4 review", due_at=timezone.now() + timedelta(days=7)
    )


def test_a_reviewer_sees_and_decides_their_items(campaign: Campaign, approver: Any) -> None:
    page = approver.get("/reviews/")

    assert page.status_code == 200
    text = page.content.decode()
    assert "Q4 review" in text and "Group contractors may request" in text
    assert "Group approvers approves" not in text  # the superusers review that one
    contractors = campaign.items.get(kind=ItemKind.REQUESTER_GROUP, subject="contractors")

    answer = approver.post(
        f"/reviews/items/{contractors.pk}/decide", {"decision": "remove", "comment": "ended"}
    )

    assert answer.status_code == 302
    contractors.refresh_from_db()
    assert contractors.decision == "remove"
    assert Resource.objects.get(slug="wiki").requester_groups == ["engineering"]
    after = approver.get("/reviews/").content.decode()
    assert "Group contractors may request: removed (removed from requester_groups)" in after
    assert f'id="item-{contractors.pk}"' not in after


def test_remove_without_a_comment_is_a_field_error(campaign: Campaign, approver: Any) -> None:
    target = campaign.items.get(kind=ItemKind.BASE_RULE)

    answer = approver.post(f"/reviews/items/{target.pk}/decide", {"decision": "remove"})

    assert answer.status_code == 400 and "Say why it should be removed." in answer.content.decode()
    target.refresh_from_db()
    assert target.decision == ""


def test_items_of_others_are_not_found(campaign: Campaign, plain_user: Any) -> None:
    target = campaign.items.first()
    assert (
        plain_user.post(f"/reviews/items/{target.pk}/decide", {"decision": "keep"}).status_code
        == 404
    )
    assert "Nothing to review" in plain_user.get("/reviews/").content.decode()


def test_an_item_about_oneself_shows_but_cannot_be_decided(
    campaign: Campaign, as_user: Any
) -> None:
    eve = as_user("idp|eve", "eve@example.com", groups=["approvers", "engineering"])
    target = campaign.items.get(kind=ItemKind.REQUESTER_GROUP, subject="engineering")

    assert "This concerns you" in eve.get("/reviews/").content.decode()
    eve.post(f"/reviews/items/{target.pk}/decide", {"decision": "keep"})

    target.refresh_from_db()
    assert target.decision == ""


def test_keep_selected_keeps_each_and_skips_what_it_may_not(
    campaign: Campaign, as_user: Any
) -> None:
    eve = as_user("idp|eve", "eve@example.com", groups=["approvers", "engineering"])
    eve.get("/reviews/")
    mine = list(
        ReviewItem.objects.filter(kind=ItemKind.REQUESTER_GROUP).values_list("pk", flat=True)
    )

    eve.post("/reviews/keep", {"items": mine, "comment": "still needed"})

    decided = dict(ReviewItem.objects.filter(pk__in=mine).values_list("subject", "decision"))
    assert decided == {"contractors": "keep", "engineering": ""}


def test_forms_need_the_csrf_token(campaign: Campaign, csrf_client: Any) -> None:
    client = csrf_client("bob", groups=["approvers"])
    client.get("/reviews/")
    target = campaign.items.first()
    assert (
        client.post(f"/reviews/items/{target.pk}/decide", {"decision": "keep"}).status_code == 403
    )


# --- the admin ------------------------------------------------------------------------------


def test_an_auditor_opens_follows_closes_and_downloads_the_pack(
    wiki: Resource, auditor: Any, approver: Any
) -> None:
    assert auditor.get("/admin/reviews/campaign/add/").status_code == 302
    form = auditor.get("/admin/reviews/campaign/open/")
    assert form.status_code == 200
    due = (timezone.now() + timedelta(days=10)).date().isoformat()

    opened = auditor.post(
        "/admin/reviews/campaign/open/",
        {"name": "Wiki review", "due_at": due, "resources": [wiki.pk], "reviewer_group": ""},
    )

    campaign = Campaign.objects.get()
    assert opened.status_code == 302 and campaign.owner.email == "carol@example.com"
    listing = auditor.get("/admin/reviews/campaign/").content.decode()
    assert "Wiki review" in listing and "0 of 4" in listing
    items = auditor.get(f"/admin/reviews/reviewitem/?campaign__id__exact={campaign.pk}")
    assert items.status_code == 200 and "Group engineering may request" in items.content.decode()
    # An approver may look but not close.
    assert approver.post(f"/admin/reviews/campaign/{campaign.pk}/close/").status_code == 302
    campaign.refresh_from_db()
    assert campaign.state == "open"

    auditor.post(f"/admin/reviews/campaign/{campaign.pk}/close/")
    campaign.refresh_from_db()
    assert campaign.state == "closed"
    assert auditor.get(f"/admin/reviews/campaign/{campaign.pk}/evidence/").status_code == 200
    pack = auditor.post(f"/admin/reviews/campaign/{campaign.pk}/evidence/")

    assert pack.status_code == 200 and pack["Content-Type"] == "application/zip"
    data = b"".join(pack.streaming_content)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert "audit.jsonl" in archive.namelist()
    exported = AuditEvent.objects.filter(action=AuditAction.AUDIT_EXPORTED).get()
    assert (
        exported.details["format"] == "evidence-pack"
        and exported.actor_label == "carol@example.com"
    )
    assert approver.post(f"/admin/reviews/campaign/{campaign.pk}/evidence/").status_code == 403


def test_bad_open_form_changes_nothing(wiki: Resource, auditor: Any) -> None:
    answer = auditor.post("/admin/reviews/campaign/open/", {"name": "", "due_at": "yesterday"})
    assert answer.status_code == 400 and not Campaign.objects.exists()
    past = (timezone.now() - timedelta(days=2)).date().isoformat()
    answer = auditor.post("/admin/reviews/campaign/open/", {"name": "x", "due_at": past})
    assert answer.status_code == 400 and "future" in answer.content.decode()
    assert not AuditEvent.objects.filter(action=ReviewAction.CAMPAIGN_OPENED).exists()


def test_approvers_cannot_open_reviews(wiki: Resource, approver: Any) -> None:
    assert approver.get("/admin/reviews/campaign/open/").status_code == 403


def test_the_items_admin_names_deciders_from_the_trail(
    campaign: Campaign, approver: Any, auditor: Any
) -> None:
    target = campaign.items.get(kind=ItemKind.BASE_RULE)
    approver.post(f"/reviews/items/{target.pk}/decide", {"decision": "keep"})
    bob = ReviewItem.objects.get(pk=target.pk).decided_by
    bob.email = "robert@example.com"
    bob.save()

    text = auditor.get(
        f"/admin/reviews/reviewitem/?campaign__id__exact={campaign.pk}"
    ).content.decode()

    assert "bob@example.com" in text and "robert@example.com" not in text


def test_the_page_reads_a_constant_number_of_queries(as_user: Any) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    owner = UserFactory(username="idp|carol", email="carol@example.com", groups=["compliance"])
    bob = as_user("idp|bob", "bob@example.com", groups=["approvers"])
    bob.get("/reviews/")  # signs Bob in
    counts = []
    for size in (1, 12):
        ResourceFactory.reset_sequence(size * 100)
        resources = [
            ResourceFactory(requester_groups=["engineering"], approver_groups=["approvers"])
            for _ in range(size)
        ]
        services.open_campaign(
            owner=owner,
            name=f"r{size}",
            due_at=timezone.now() + timedelta(days=3),
            resources=resources,
        )
        with CaptureQueriesContext(connection) as queries:
            assert bob.get("/reviews/").status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1], counts
