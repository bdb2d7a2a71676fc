"""The compliance notices: the audit stream's alert reaches every superuser once."""

from __future__ import annotations

from typing import Any

import pytest

from apps.audit.stream import sender
from apps.notifications.models import Notification
from devtools.siem import HttpReceiver
from tests.audit.conftest import add_entries
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_a_refused_stream_alerts_the_superusers_once(
    http_receiver: HttpReceiver,
    stream_to: Any,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    UserFactory(email="root@example.com", is_superuser=True)
    UserFactory(email="other-root@example.com", is_superuser=True)
    UserFactory(email="bob@example.com")
    stream_to(http_receiver)
    settings.AUDIT_STREAM_TOKEN = "a-wrong-token"
    settings.CELERY_TASK_ALWAYS_EAGER = True  # the notice task runs here; no stream nudge
    add_entries(2)

    for _ in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            sender.pump(http_receiver.url, force=True)

    notes = Notification.objects.filter(event="audit_stream_alert")
    assert sorted(notes.values_list("recipient", flat=True)) == [
        "other-root@example.com",
        "root@example.com",
    ]
    note = notes.first()
    assert note.subject == f"[jitportal] Audit stream refused: {http_receiver.url}"
    assert "answered 401" in note.body and "a-wrong-token" not in note.body
    assert "/admin/audit/streamdestination/" in note.body
