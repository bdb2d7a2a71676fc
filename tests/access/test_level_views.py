"""The request form and dashboard with access levels and schedules."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from apps.access.models import AccessRequest, Grant
from apps.access.states import SyncStatus
from tests.access.test_views import post_data
from tests.factories import AccessLevelFactory, GrantFactory, ResourceFactory

# Requests need somebody able to approve them (a request nobody could approve is refused).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("standby_approver")]

BERLIN = {"days": "mon-fri", "after": "09:00", "before": "17:00", "timezone": "Europe/Berlin"}


@pytest.fixture
def grafana() -> Any:
    resource = ResourceFactory(slug="grafana", name="Grafana admin", duration_choices=[60, 240])
    AccessLevelFactory(
        resource=resource,
        slug="read-only",
        name="Read-only",
        rank=1,
        criteria=[{"http_method": {"in": ["GET", "HEAD", "OPTIONS"]}}],
    )
    AccessLevelFactory(
        resource=resource,
        slug="api",
        name="API write",
        rank=2,
        criteria=[{"http_path": {"starts_with": "/api/"}}],
    )
    AccessLevelFactory(resource=resource, slug="full", name="Full", rank=3)
    return resource


@pytest.fixture
def alice(signed_in: Any) -> Any:
    return signed_in("alice", groups=["engineering"])


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", "full"),  # a request naming no level asks for the highest
        ("&method=GET&path=/d/home", "read-only"),
        ("&method=get&path=/d/home", "read-only"),  # methods are upper-cased
        ("&method=POST&path=/api/dashboards", "api"),
        ("&method=POST&path=/admin/users", "full"),
    ],
)
def test_the_lowest_level_that_would_have_allowed_is_preselected(
    alice: Any, grafana: Any, query: str, expected: str
) -> None:
    client, _ = alice
    response = client.get(f"/requests/new?resource=grafana{query}")
    assert response.status_code == 200
    assert response.context["form"].initial == {"resource": "grafana", "level": expected}
    assert f'<option value="{expected}" selected>' in response.content.decode()


def test_posting_a_level_files_it_and_a_missing_one_is_a_field_error(
    alice: Any, grafana: Any
) -> None:
    client, _ = alice
    response = client.post("/requests/new", post_data())
    assert response.status_code == 200
    assert "Choose an access level for Grafana admin." in response.content.decode()
    response = client.post("/requests/new", post_data(level="nope"))
    assert "Choose one of the access levels of Grafana admin" in response.content.decode()
    assert AccessRequest.objects.count() == 0

    response = client.post("/requests/new", post_data(level="api"))
    assert response.status_code == 302
    assert AccessRequest.objects.get().level.slug == "api"


def test_the_schedule_is_shown_in_plain_words_and_in_my_zone(alice: Any) -> None:
    client, user = alice
    user.time_zone = "America/New_York"
    user.save()
    ResourceFactory(slug="prod", name="Prod console", schedule=BERLIN)
    html = client.get("/requests/new?resource=prod").content.decode()
    assert "Mon-Fri 09:00-17:00 (Europe/Berlin); for you (America/New_York)" in html


def test_the_dashboard_says_when_a_scheduled_grant_opens_or_closes(alice: Any) -> None:
    client, user = alice
    prod = ResourceFactory(slug="prod", name="Prod console", schedule=BERLIN)
    now = timezone.now()
    GrantFactory(
        request__requester=user,
        request__resource=prod,
        not_before=now - timedelta(hours=1),
        expires_at=now + timedelta(days=14),
        schedule=BERLIN,
        sync_status=SyncStatus.LIVE,
        live_at=now - timedelta(hours=1),
    )
    html = client.get("/").content.decode()
    assert ("Allowed now, until" in html) != ("Opens " in html)
    assert "Mon-Fri 09:00-17:00 (Europe/Berlin)" in html
    grant = Grant.objects.get()
    assert grant.schedule == BERLIN
