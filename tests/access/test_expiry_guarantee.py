"""The weaker guarantee of a target that cannot close a rule by itself is said where people
look: the requester's request page, the resource admin and the API's grant fields."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine

from apps.access import reach, targets
from apps.access.states import GrantState, SyncStatus
from tests.factories import GrantFactory, ResourceFactory

pytestmark = [pytest.mark.django_db]

NOON = datetime(2026, 3, 2, 11, 0, tzinfo=UTC)  # 12:00 CET
ZERO = frozenset({targets.DATE, targets.RECURRING, targets.CHANGESETS, targets.ACTIVITY_LOG})


@pytest.fixture
def core(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(targets, "capabilities", lambda name: frozenset())


def grant_for(user: Any = None, **fields: Any) -> Any:
    values: dict[str, Any] = {
        "not_before": NOON - timedelta(hours=1),
        "expires_at": NOON + timedelta(hours=5),  # 17:00 CET
        "sync_status": SyncStatus.LIVE,
        "live_at": NOON - timedelta(hours=1),
        "enforced_at": NOON - timedelta(hours=1),
    }
    if user is not None:
        values["request__requester"] = user
    return GrantFactory(**{**values, **fields})


def test_closing_says_who_ends_the_access_and_when(monkeypatch: pytest.MonkeyPatch) -> None:
    berlin = ZoneInfo("Europe/Berlin")
    grant = grant_for()
    monkeypatch.setattr(targets, "capabilities", lambda name: ZERO)
    assert (
        reach.closing(grant, now=NOON, zone=berlin) == "Closes by itself in Pomerium at 17:00 CET."
    )
    monkeypatch.setattr(targets, "capabilities", lambda name: frozenset())
    assert reach.closing(grant, now=NOON, zone=berlin) == (
        "Closed by jitportal at 17:00 CET: this Pomerium cannot close a rule by itself, so "
        "jitportal's worker removes it then."
    )
    grant.state = GrantState.EXPIRED
    assert reach.closing(grant, now=NOON, zone=berlin) == ""


def test_the_request_page_says_jitportal_closes_it_on_core(signed_in: Any, core: None) -> None:
    client, user = signed_in("alice", groups=["engineering"])
    grant = grant_for(user)
    with time_machine.travel(NOON, tick=False):
        html = client.get(f"/requests/{grant.request_id}").content.decode()
    assert 'id="grant-closing"' in html
    assert "Closed by jitportal at 16:00 UTC" in html
    assert "Closes by itself" not in html


def test_the_request_page_says_pomerium_closes_it_on_zero(signed_in: Any) -> None:
    client, user = signed_in("alice", groups=["engineering"])
    grant = grant_for(user)
    with time_machine.travel(NOON, tick=False):
        html = client.get(f"/requests/{grant.request_id}").content.decode()
    assert "Closes by itself in Pomerium at 16:00 UTC" in html
    assert "Closed by jitportal" not in html


def test_the_resource_admin_says_who_enforces_expiry(
    signed_in: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _ = signed_in("root", groups=["portal-admins"])
    resource = ResourceFactory()
    url = f"/admin/access/resource/{resource.pk}/change/"
    zero = client.get(url).content.decode()
    assert "Expiry" in zero and "Enforced by Pomerium itself" in zero
    monkeypatch.setattr(targets, "capabilities", lambda name: frozenset())
    core = client.get(url).content.decode()
    assert "Enforced by jitportal&#x27;s worker" in core
    assert "Enforced by Pomerium itself" not in core


def test_the_api_grant_says_whether_it_closes_by_itself(
    signed_in: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from apps.api.api import grant_out

    grant = grant_for()
    out = grant_out(grant, NOON)
    assert out["closes_by_itself"] is True
    assert out["closing"].startswith("Closes by itself in Pomerium at 16:00")
    monkeypatch.setattr(targets, "capabilities", lambda name: frozenset())
    out = grant_out(grant, NOON)
    assert out["closes_by_itself"] is False
    assert out["closing"].startswith("Closed by jitportal at 16:00")


def test_allowed_now_on_core_needs_the_rule_confirmed_for_this_window(core: None) -> None:
    """A grant the worker has not yet made live is not 'allowed', even inside its window."""
    grant = grant_for(sync_status=SyncStatus.PENDING, live_at=None, enforced_at=None)
    assert reach.access(grant, now=NOON).state == reach.WAITING
    grant = grant_for()
    assert reach.access(grant, now=NOON).state == reach.ALLOWED
    # Ended on Core and not confirmed removed: the person may still get in; it says so.
    ended = reach.access(grant, now=NOON + timedelta(hours=6))
    assert ended.state == reach.ENDED and ended.removal_unconfirmed
