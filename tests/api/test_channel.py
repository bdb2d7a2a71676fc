"""Which entries carry the channel: requests and grants changed over HTTP, nothing else."""

from __future__ import annotations

import pytest
from django.db import transaction

from apps.access.actions import AccessAction
from apps.accounts.actions import AccountAction
from apps.accounts.models import User
from apps.audit import context
from apps.audit.models import AuditEvent
from apps.audit.services import record
from tests.factories import AccessRequestFactory, ResourceFactory

pytestmark = pytest.mark.django_db


def test_request_and_grant_entries_carry_the_channel_others_do_not():
    token = context.activate(context.AuditContext(channel="api"))
    try:
        with transaction.atomic():
            submitted = record(AccessAction.REQUEST_SUBMITTED, details={"kind": "new"})
            revoked = record(AccessAction.GRANT_REVOKED, details={})
            updated = record(AccountAction.USER_UPDATED, details={"email": "x"})
    finally:
        context.deactivate(token)

    assert submitted.details == {"kind": "new", "channel": "api"}
    assert revoked.details == {"channel": "api"}
    assert updated.details == {"email": "x"}


def test_without_a_channel_tasks_and_commands_record_none():
    with transaction.atomic():
        expired = record(AccessAction.REQUEST_EXPIRED, details={"requester": "a@example.com"})

    assert expired.details == {"requester": "a@example.com"}


def test_the_admin_approval_records_channel_web(approver, plain_user, db):
    plain_user.get("/preferences")  # signs Dave in, creating him from the assertion
    approver.get("/preferences")
    dave = User.objects.get(email="dave@example.com")
    req = AccessRequestFactory(requester=dave, resource=ResourceFactory())

    approver.post(f"/admin/access/accessrequest/{req.pk}/approve/", {"apply": "1", "note": ""})

    event = AuditEvent.objects.get(action=AccessAction.REQUEST_APPROVED)
    assert event.details["channel"] == "web"
