"""Who is told what: each domain event, driven through the access services, end to end.

The service commits, its on-commit hook enqueues ``access.notify`` (eager here), which
stores the rows and enqueues ``notifications.send`` for each, which mails through the
locmem backend. Assertions are on the exact recipients, subjects and links.
"""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone

from apps.access import events, services
from apps.access.models import AccessRequest, Grant, Resource
from apps.access.states import RequestState, SyncStatus
from apps.accounts.timezones import when
from apps.notifications.models import Channel, Notification, Status
from tests.factories import ResourceFactory, UserFactory

pytestmark = pytest.mark.django_db

ADMIN_REQ = "https://jit.example.com/admin/access/accessrequest/{}/change/"
ADMIN_GRANT = "https://jit.example.com/admin/access/grant/{}/change/"
PORTAL_REQ = "https://jit.example.com/requests/{}"


def sent() -> dict[str, mail.EmailMultiAlternatives]:
    """Mail sent so far, by recipient (each notice goes to exactly one address)."""
    by_recipient: dict[str, Any] = {}
    for message in mail.outbox:
        assert len(message.to) == 1
        assert message.to[0] not in by_recipient, f"two mails to {message.to[0]}"
        by_recipient[message.to[0]] = message
    return by_recipient


def html_of(message: Any) -> str:
    (content, mimetype), *_ = message.alternatives
    assert mimetype == "text/html"
    return content


def submit(user: Any, resource: Resource, after_commit: Any, **kw: Any) -> AccessRequest:
    kw.setdefault("duration_minutes", 120)
    kw.setdefault("justification", "Debugging the checkout outage")
    with after_commit():
        return services.submit_request(requester=user, resource=resource, **kw)


def test_submitted_request_mails_each_approver_with_the_admin_link(
    people: dict[str, Any], resource: Resource, after_commit: Any
) -> None:
    req = submit(people["alice"], resource, after_commit, ticket="INC-7")

    by = sent()
    # The approver group's members; not the requester, not the superuser (groups exist).
    assert sorted(by) == ["bob@example.com", "erin@example.com"]
    message = by["bob@example.com"]
    assert message.subject == "[jitportal] Approval needed: Alice asks for Grafana admin"
    assert message.from_email == "jitportal <jit@example.com>"
    assert message.extra_headers["Auto-Submitted"] == "auto-generated"
    link = ADMIN_REQ.format(req.pk)
    assert link in message.body
    assert f'href="{link}"' in html_of(message)
    assert "Debugging the checkout outage" in message.body
    assert "INC-7" in message.body
    rows = Notification.objects.order_by("recipient")
    assert [(n.event, n.channel, n.recipient, n.status, n.attempts) for n in rows] == [
        (events.REQUEST_SUBMITTED, Channel.EMAIL, "bob@example.com", Status.SENT, 1),
        (events.REQUEST_SUBMITTED, Channel.EMAIL, "erin@example.com", Status.SENT, 1),
    ]
    assert all(n.request_id == req.pk and n.sent_at is not None for n in rows)


def test_resource_without_approver_groups_tells_the_superusers(
    people: dict[str, Any], after_commit: Any
) -> None:
    open_resource = ResourceFactory(slug="wiki", name="Wiki", approver_groups=[])
    submit(people["alice"], open_resource, after_commit)
    assert sorted(sent()) == ["root@example.com"]


def test_superusers_stand_in_when_the_requester_is_the_only_approver(
    people: dict[str, Any], after_commit: Any
) -> None:
    solo = ResourceFactory(slug="solo", name="Solo", approver_groups=["solo-approvers"])
    lone = UserFactory(email="lone@example.com", groups=["solo-approvers"])
    submit(lone, solo, after_commit)
    assert sorted(sent()) == ["root@example.com"]


def test_html_part_escapes_user_text(
    people: dict[str, Any], resource: Resource, after_commit: Any
) -> None:
    submit(people["alice"], resource, after_commit, justification="<script>x</script> & more")
    message = sent()["bob@example.com"]
    assert "<script>" not in html_of(message)
    assert "&lt;script&gt;x&lt;/script&gt; &amp; more" in html_of(message)
    assert "<script>x</script> & more" in message.body  # the text part is plain text


def test_approval_tells_only_the_requester_with_a_link_to_their_request(
    people: dict[str, Any], resource: Resource, after_commit: Any
) -> None:
    req = submit(people["alice"], resource, after_commit)
    mail.outbox.clear()
    with after_commit():
        grant = services.approve_request(req, approver=people["bob"], note="ok for today")

    by = sent()
    assert sorted(by) == ["alice@example.com"]
    message = by["alice@example.com"]
    assert message.subject == "[jitportal] Approved: your access to Grafana admin"
    assert "approved by Bob" in message.body
    assert "Note from the approver: ok for today" in message.body
    assert PORTAL_REQ.format(req.pk) in message.body
    assert "/admin/" not in message.body  # the requester is never sent to "approve this"
    row = Notification.objects.get(event=events.REQUEST_DECIDED)
    assert grant is not None
    assert (row.request_id, row.grant_id) == (req.pk, grant.pk)


def test_quorum_tells_the_requester_once_the_last_approval_lands(
    people: dict[str, Any], resource: Resource, after_commit: Any
) -> None:
    resource.approvals_required = 2
    resource.save()
    req = submit(people["alice"], resource, after_commit)
    mail.outbox.clear()
    with after_commit():
        services.approve_request(req, approver=people["bob"])
    assert mail.outbox == []
    with after_commit():
        services.approve_request(req, approver=people["erin"])
    assert sorted(sent()) == ["alice@example.com"]


def test_approved_extension_tells_the_requester_the_new_end(
    people: dict[str, Any], resource: Resource, after_commit: Any
) -> None:
    first = submit(people["alice"], resource, after_commit)
    with after_commit():
        grant = services.approve_request(first, approver=people["bob"])
    assert grant is not None
    more = submit(people["alice"], resource, after_commit, duration_minutes=60)
    assert more.kind == "extension"
    mail.outbox.clear()
    with after_commit():
        services.approve_request(more, approver=people["erin"])
    grant.refresh_from_db()

    by = sent()
    assert sorted(by) == ["alice@example.com"]
    assert (
        by["alice@example.com"].subject == "[jitportal] Approved: your extension for Grafana admin"
    )
    end = grant.expires_at.astimezone(UTC).strftime("%a %-d %b %Y, %H:%M UTC")
    assert f"Your access now ends at {end}." in by["alice@example.com"].body
    row = Notification.objects.get(event=events.REQUEST_DECIDED, request=more)
    assert row.grant_id == grant.pk


def test_rejection_tells_the_requester_the_reason(
    people: dict[str, Any], resource: Resource, after_commit: Any
) -> None:
    req = submit(people["alice"], resource, after_commit)
    mail.outbox.clear()
    with after_commit():
        services.reject_request(req, approver=people["erin"], reason="Use the read-only role")

    by = sent()
    assert sorted(by) == ["alice@example.com"]
    assert by["alice@example.com"].subject == "[jitportal] Rejected: your request for Grafana admin"
    assert "rejected by Erin" in by["alice@example.com"].body
    assert "Reason: Use the read-only role" in by["alice@example.com"].body


def test_auto_approval_tells_the_requester_and_the_approvers_after_the_fact(
    people: dict[str, Any], resource: Resource, after_commit: Any
) -> None:
    oncall = UserFactory(email="olga@example.com", display_name="Olga", groups=["oncall"])
    req = submit(oncall, resource, after_commit, duration_minutes=60)
    assert req.state == RequestState.APPROVED

    by = sent()
    assert sorted(by) == ["bob@example.com", "erin@example.com", "olga@example.com"]
    assert by["olga@example.com"].subject == (
        "[jitportal] Approved automatically: your access to Grafana admin"
    )
    assert "members of oncall may get up to 60 minutes" in by["olga@example.com"].body
    assert by["bob@example.com"].subject == (
        "[jitportal] Auto-approved: Olga got Grafana admin for 1 hour"
    )
    assert "nothing needs deciding" in by["bob@example.com"].body
    assert ADMIN_REQ.format(req.pk) in by["bob@example.com"].body
    # Nobody was asked to approve what needed no approval.
    assert not Notification.objects.filter(event=events.REQUEST_SUBMITTED).exists()


def test_on_behalf_request_is_not_put_to_the_approvers(
    people: dict[str, Any], resource: Resource, after_commit: Any
) -> None:
    with after_commit():
        req = services.submit_on_behalf(
            approver=people["bob"],
            user=people["alice"],
            resource=resource,
            duration_minutes=60,
            justification="Incident INC-9 needs Alice",
        )
    assert req.state == RequestState.APPROVED
    assert sorted(sent()) == ["alice@example.com"]


def test_break_glass_tells_every_approver_and_superuser_at_once(
    people: dict[str, Any], resource: Resource, after_commit: Any
) -> None:
    with after_commit():
        grant = services.break_glass(
            user=people["alice"],
            resource=resource,
            duration_minutes=30,
            justification="Production is down, pager INC-42",
        )

    by = sent()
    assert sorted(by) == ["bob@example.com", "erin@example.com", "root@example.com"]
    message = by["root@example.com"]
    assert message.subject == (
        "[jitportal] BREAK-GLASS: Alice activated emergency access to Grafana admin"
    )
    assert "Production is down, pager INC-42" in message.body
    assert ADMIN_GRANT.format(grant.pk) in message.body
    assert f'href="{ADMIN_GRANT.format(grant.pk)}"' in html_of(message)


def test_revocation_tells_the_grant_user_unless_they_ended_it_themselves(
    people: dict[str, Any], resource: Resource, after_commit: Any
) -> None:
    req = submit(people["alice"], resource, after_commit)
    with after_commit():
        grant = services.approve_request(req, approver=people["bob"])
    mail.outbox.clear()
    with after_commit():
        services.revoke_grant(grant, actor=people["erin"], reason="Incident closed")
    by = sent()
    assert sorted(by) == ["alice@example.com"]
    assert by["alice@example.com"].subject == "[jitportal] Your access to Grafana admin was revoked"
    assert "Erin revoked your access" in by["alice@example.com"].body
    assert "Reason: Incident closed" in by["alice@example.com"].body

    other = ResourceFactory(slug="db", name="DB", approver_groups=["approvers"])
    req2 = submit(people["alice"], other, after_commit)
    with after_commit():
        grant2 = services.approve_request(req2, approver=people["bob"])
    mail.outbox.clear()
    with after_commit():
        services.revoke_grant(grant2, actor=people["alice"], reason="Done early")
    assert mail.outbox == []


def test_grant_live_tells_the_requester_but_not_after_revocation(
    people: dict[str, Any], resource: Resource, after_commit: Any
) -> None:
    req = submit(people["alice"], resource, after_commit)
    with after_commit():
        grant = services.approve_request(req, approver=people["bob"])
    assert isinstance(grant, Grant)
    mail.outbox.clear()
    # What the Zero sync does once Pomerium confirmed the rule.
    with after_commit(), transaction.atomic():
        Grant.objects.filter(pk=grant.pk).update(
            sync_status=SyncStatus.LIVE, live_at=timezone.now()
        )
        events.emit(events.GRANT_LIVE, grant_id=grant.pk)
    by = sent()
    assert sorted(by) == ["alice@example.com"]
    until = when(grant.expires_at, UTC, timezone.now())
    assert by["alice@example.com"].subject == (
        f"[jitportal] Your access to Grafana admin: Allowed now, until {until}"
    )
    assert PORTAL_REQ.format(req.pk) in by["alice@example.com"].body

    with after_commit():
        services.revoke_grant(grant, actor=people["bob"], reason="Wrong person")
    mail.outbox.clear()
    Notification.objects.all().delete()  # a second "live" would otherwise be deduplicated
    with after_commit(), transaction.atomic():
        events.emit(events.GRANT_LIVE, grant_id=grant.pk)
    assert mail.outbox == []


def test_times_are_shown_in_the_recipients_time_zone(
    people: dict[str, Any], resource: Resource, after_commit: Any
) -> None:
    alice = people["alice"]
    alice.time_zone = "Europe/Berlin"
    alice.save()
    req = submit(alice, resource, after_commit)
    start = timezone.now().replace(month=1, day=15, hour=9, minute=0, second=0, microsecond=0)
    with after_commit():
        services.approve_request(req, approver=people["bob"], now=start)
    body = sent()["alice@example.com"].body
    # 09:00 UTC is 10:00 in Berlin in January; two hours later, 12:00.
    assert "10:00 CET until" in body
    assert "12:00 CET (2 hours)" in body


def test_the_same_event_dispatched_twice_sends_once(
    people: dict[str, Any], resource: Resource, after_commit: Any
) -> None:
    req = submit(people["alice"], resource, after_commit)
    mail.outbox.clear()
    # The notify task delivered a second time (acks_late redelivery after a worker crash).
    from apps.notifications.tasks import notify

    notify.delay(event=events.REQUEST_SUBMITTED, request_id=req.pk)
    assert mail.outbox == []
    assert Notification.objects.count() == 2


def test_expired_request_gets_no_waiting_reminder_and_unknown_events_are_ignored(
    people: dict[str, Any], resource: Resource
) -> None:
    from apps.notifications import services as outbox

    assert outbox.dispatch("no_such_event", request_id=1) == []
    req = AccessRequest.objects.create(
        requester=people["alice"],
        filed_by=people["alice"],
        resource=resource,
        duration_minutes=60,
        state=RequestState.EXPIRED,
        created_at=timezone.now() - timedelta(hours=30),
        expires_at=timezone.now() - timedelta(hours=6),
    )
    assert outbox.dispatch(events.REQUEST_WAITING, request_id=req.pk) == []
    assert outbox.dispatch(events.REQUEST_SUBMITTED, request_id=req.pk) == []


def test_grant_live_for_a_scheduled_grant_says_when_it_starts(
    people: dict[str, Any], resource: Resource, after_commit: Any
) -> None:
    from datetime import timedelta

    start = (timezone.now() + timedelta(days=2)).replace(microsecond=0)
    req = submit(people["alice"], resource, after_commit, start_at=start)
    with after_commit():
        grant = services.approve_request(req, approver=people["bob"])
    assert isinstance(grant, Grant)
    mail.outbox.clear()
    with after_commit(), transaction.atomic():
        Grant.objects.filter(pk=grant.pk).update(
            sync_status=SyncStatus.LIVE, live_at=timezone.now()
        )
        events.emit(events.GRANT_LIVE, grant_id=grant.pk)
    message = sent()["alice@example.com"]
    opens = when(start, UTC, timezone.now())
    assert message.subject == f"[jitportal] Your access to Grafana admin: Opens {opens}"
    assert f"Pomerium has confirmed the rule for your access to Grafana admin. Opens {opens}." in (
        message.body
    )
    assert "Allowed now" not in message.body
