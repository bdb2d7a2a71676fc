"""The notifications admin: a read-only record with filters; superusers may retry failures."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail

from apps.access import events
from apps.accounts import roles
from apps.notifications.models import Channel, Notification, Status

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/notifications/notification/"


def row(recipient: str, status: str, **kw: Any) -> Notification:
    return Notification.objects.create(
        event=kw.pop("event", events.GRANT_REVOKED),
        channel=Channel.EMAIL,
        recipient=recipient,
        subject=f"[jitportal] to {recipient}",
        body="Your access was revoked.",
        status=status,
        attempts=5 if status == Status.FAILED else 1,
        last_error="gave up after 5 attempts: SMTP server disconnected"
        if status == Status.FAILED
        else "",
        dedup_key=recipient.ljust(64, "x")[:64],
        **kw,
    )


@pytest.fixture
def rows() -> dict[str, Notification]:
    return {
        "failed": row("failed@example.com", Status.FAILED),
        "sent": row("sent@example.com", Status.SENT, event=events.BREAK_GLASS),
    }


@pytest.fixture
def superuser(as_user: Any) -> Any:
    client = as_user("idp|root", "root@example.com", groups=["portal-admins"])
    assert client.get(CHANGELIST).status_code == 200
    return client


@pytest.fixture
def viewer(as_user: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A staff member whose role includes the view permission on notifications.

    Permissions come only from the managed role groups (a permission attached to a user by
    hand grants nothing), so the approver role is widened here, as a deployment would.
    """
    widened = (*roles.ROLE_PERMISSIONS[roles.APPROVER], "notifications.view_notification")
    monkeypatch.setitem(roles.ROLE_PERMISSIONS, roles.APPROVER, widened)
    return as_user("idp|bob", "bob@example.com", groups=["approvers"])


def test_changelist_filters_by_status_channel_and_event(
    superuser: Any, rows: dict[str, Notification]
) -> None:
    page = superuser.get(CHANGELIST, {"status__exact": "failed"}).content.decode()
    assert "failed@example.com" in page
    assert "sent@example.com" not in page
    assert "gave up after 5 attempts" in page
    page = superuser.get(CHANGELIST, {"event__exact": events.BREAK_GLASS}).content.decode()
    assert "sent@example.com" in page
    assert "failed@example.com" not in page
    page = superuser.get(CHANGELIST, {"channel__exact": "slack"}).content.decode()
    assert "sent@example.com" not in page
    assert "failed@example.com" not in page


def test_records_cannot_be_added_edited_or_deleted(
    superuser: Any, rows: dict[str, Notification]
) -> None:
    failed = rows["failed"]
    assert superuser.get(f"{CHANGELIST}add/").status_code == 403
    assert superuser.get(f"{CHANGELIST}{failed.pk}/delete/").status_code == 403
    assert (
        superuser.post(
            f"{CHANGELIST}{failed.pk}/change/", {"recipient": "evil@example.com"}
        ).status_code
        == 403
    )
    page = superuser.get(f"{CHANGELIST}{failed.pk}/change/").content.decode()
    assert "Your access was revoked." in page  # readable, not editable
    assert 'name="recipient"' not in page
    # delete_selected is not offered; posting it anyway deletes nothing.
    superuser.post(CHANGELIST, {"action": "delete_selected", "_selected_action": [failed.pk]})
    assert Notification.objects.filter(pk=failed.pk).exists()


def test_superuser_retries_failed_notifications(
    superuser: Any, rows: dict[str, Notification], after_commit: Any
) -> None:
    with after_commit():
        response = superuser.post(
            CHANGELIST,
            {"action": "retry_selected", "_selected_action": [rows["failed"].pk, rows["sent"].pk]},
            follow=True,
        )
    page = response.content.decode()
    assert "1 notification(s) queued again." in page
    assert "1 skipped: only failed notifications are retried." in page
    failed = Notification.objects.get(pk=rows["failed"].pk)
    assert (failed.status, failed.attempts, failed.last_error) == (Status.SENT, 1, "")
    assert [m.to for m in mail.outbox] == [["failed@example.com"]]
    assert Notification.objects.get(pk=rows["sent"].pk).attempts == 1  # untouched


def test_other_staff_may_look_but_not_retry(
    viewer: Any, rows: dict[str, Notification], after_commit: Any
) -> None:
    page = viewer.get(CHANGELIST).content.decode()
    assert "failed@example.com" in page
    assert "retry_selected" not in page
    with after_commit():
        viewer.post(
            CHANGELIST, {"action": "retry_selected", "_selected_action": [rows["failed"].pk]}
        )
    assert Notification.objects.get(pk=rows["failed"].pk).status == Status.FAILED
    assert mail.outbox == []


def test_changelist_queries_do_not_grow_with_rows(superuser: Any) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert superuser.get(CHANGELIST).status_code == 200
        return len(ctx.captured_queries)

    row("one@example.com", Status.SENT)
    one = queries()
    for n in range(30):
        row(f"r{n}@example.com", Status.FAILED)
    assert queries() == one
