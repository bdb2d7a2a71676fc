"""Each app registers the audit actions it writes; the trail refuses any other code."""

from __future__ import annotations

import pytest
from django.db import models

from apps.access.actions import AccessAction
from apps.accounts.actions import AccountAction
from apps.audit import actions
from apps.audit import services as audit
from apps.audit.forms import ExportForm
from apps.audit.models import AuditAction, AuditEvent
from apps.pomerium.actions import ZeroAction


def test_every_built_in_action_is_registered_with_its_label() -> None:
    for action in [*AuditAction, *AccessAction, *AccountAction, *ZeroAction]:
        assert actions.is_registered(action.value)
        assert actions.label(action.value) == action.label


def test_registering_a_code_again_with_another_label_is_refused() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        actions.register([(AccessAction.GRANT_REVOKED.value, "Something else")])


def test_an_app_registers_its_own_actions_and_they_become_choices() -> None:
    class DemoAction(models.TextChoices):
        PINGED = "testapp.pinged", "Pinged"

    actions.register(DemoAction)
    assert ("testapp.pinged", "Pinged") in actions.choices()
    assert ("testapp.pinged", "Pinged") in ExportForm().fields["action"].choices
    assert actions.label("never.heard_of") == "never.heard_of"


@pytest.mark.django_db
def test_an_unregistered_action_is_refused_and_nothing_is_written() -> None:
    with pytest.raises(actions.UnknownAction, match=r"grant\.revokd"), audit.atomic():
        audit.record("grant.revokd", details={})
    assert not AuditEvent.objects.exists()
