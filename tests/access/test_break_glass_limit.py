"""Issue 27, gap 4: break-glass has a limit across activations.

The red team ended a break-glass grant and activated again, three times, leaving four
unreviewed grants. Now, through the real break-glass page: while a person holds
``BREAK_GLASS_MAX_UNREVIEWED`` (default 1) unreviewed break-glass grants on a resource,
ended ones included, the next activation is refused with a clear message, audited, and
every approver is told of each attempt; an approver's review opens the way again.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
from django.core import mail

from apps.access.models import Grant, Resource
from apps.accounts.models import User
from apps.audit.models import AuditEvent
from apps.notifications.models import Notification
from tests.factories import ResourceFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager_celery")]

REFUSED = "grant.break_glass_refused"
FIRE = "primary database down, paging on call"


@pytest.fixture
def db_resource() -> Resource:
    return ResourceFactory(
        slug="prod-db",
        name="Production DB",
        break_glass_groups=["oncall"],
        break_glass_max_minutes=60,
        duration_choices=[30, 60],
    )


@pytest.fixture
def people(signed_in: Any) -> dict[str, tuple[Any, User]]:
    return {
        "olga": signed_in("olga", groups=["oncall"]),
        "bob": signed_in("bob", groups=["approvers"]),
    }


Commit = Callable[..., AbstractContextManager[Any]]


def activate(client: Any, commit: Commit) -> Any:
    with commit(execute=True):
        return client.post("/break-glass/prod-db", {"duration": "30", "justification": FIRE})


def end(client: Any, grant: Grant, commit: Commit) -> None:
    with commit(execute=True):
        assert client.post(f"/requests/{grant.request_id}/end").status_code == 302


def test_ending_and_activating_again_is_refused_until_reviewed(
    people: dict[str, tuple[Any, User]],
    db_resource: Resource,
    django_capture_on_commit_callbacks: Commit,
) -> None:
    olga, bob = people["olga"][0], people["bob"][0]
    commit = django_capture_on_commit_callbacks
    first = activate(olga, commit)
    assert first.status_code == 302
    grant = Grant.objects.get()
    end(olga, grant, commit)
    mail.outbox.clear()

    # The red team's loop: end, activate again. Each attempt is refused, audited, told.
    for attempt in (1, 2):
        page = activate(olga, commit)
        assert page.status_code == 200
        text = page.content.decode()
        assert "Break-glass refused: no approver has reviewed your earlier break-glass" in text
        assert Grant.objects.count() == 1
        refusals = AuditEvent.objects.filter(action=REFUSED).order_by("seq")
        assert refusals.count() == attempt
        entry = refusals.last()
        assert entry is not None
        assert entry.actor_label == "olga@example.com"
        assert entry.resource_slug == "prod-db"
        assert entry.details["unreviewed_grants"] == [grant.pk]
        assert entry.details["limit"] == 1
        assert entry.details["justification"] == FIRE
        told = Notification.objects.filter(event="break_glass_refused", recipient="bob@example.com")
        assert told.count() == attempt
    assert [m.to for m in mail.outbox] == [["bob@example.com"], ["bob@example.com"]]
    assert "tried to activate break-glass access to Production DB again" in mail.outbox[0].body

    # Bob reviews the earlier grant in the admin: Olga may break glass again.
    with commit(execute=True):
        reviewed = bob.post(
            f"/admin/access/grant/{grant.pk}/review/", {"apply": "yes", "note": "checked"}
        )
    assert reviewed.status_code == 302
    assert activate(olga, commit).status_code == 302
    assert Grant.objects.filter(is_break_glass=True).count() == 2


def test_the_limit_is_a_setting(
    people: dict[str, tuple[Any, User]],
    db_resource: Resource,
    django_capture_on_commit_callbacks: Commit,
    settings: Any,
) -> None:
    settings.BREAK_GLASS_MAX_UNREVIEWED = 2
    olga = people["olga"][0]
    commit = django_capture_on_commit_callbacks
    for _ in range(2):
        assert activate(olga, commit).status_code == 302
        end(olga, Grant.objects.filter(state="active").get(), commit)
    assert activate(olga, commit).status_code == 200
    assert Grant.objects.count() == 2
    assert AuditEvent.objects.get(action=REFUSED).details["unreviewed_grants"] == sorted(
        Grant.objects.values_list("pk", flat=True), reverse=True
    )


def test_a_reviewed_grant_on_another_resource_does_not_count(
    people: dict[str, tuple[Any, User]],
    db_resource: Resource,
    django_capture_on_commit_callbacks: Commit,
) -> None:
    ResourceFactory(slug="cache", name="Cache", break_glass_groups=["oncall"])
    olga = people["olga"][0]
    commit = django_capture_on_commit_callbacks
    with commit(execute=True):
        other = olga.post("/break-glass/cache", {"duration": "60", "justification": FIRE})
    assert other.status_code == 302
    # One unreviewed grant elsewhere does not block this resource.
    assert activate(olga, commit).status_code == 302
    assert not AuditEvent.objects.filter(action=REFUSED).exists()
