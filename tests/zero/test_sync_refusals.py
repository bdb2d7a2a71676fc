"""One rule Pomerium refuses never holds a revocation back (issue #27, gap 6): the sync
leaves the offending grant's rule out, marks that grant ``error`` (audited once), and still
writes every other change. Against the simulator over real HTTP, which refuses what Zero
refuses with its own code (devtools/zerosim/ppl.py), never with the portal's validator."""

from __future__ import annotations

from typing import Any

import pytest

from apps.access import services
from apps.access.models import Grant, Resource
from apps.access.states import SyncStatus
from apps.audit.models import AuditEvent
from apps.pomerium.actions import ZeroAction
from apps.pomerium.models import PolicySync
from apps.pomerium.sync import FAILED, SYNCED, sync_resource
from devtools.zerosim.simulator import ZeroSimulator
from tests.factories import AccessLevelFactory, UserFactory
from tests.zero.helpers import approve

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("zero_settings")]

# Stored before the portal validated CIDRs as Pomerium does: a level the admin would now
# refuse, and Zero refuses every write carrying it.
BAD_CIDR = [{"source_ip": "10.0.0.0/33"}]


def _approve_at(email: str, resource: Resource, level: Any, approver: Any) -> Grant:
    user = UserFactory(username=f"idp|{email}", email=email)
    request = services.submit_request(
        requester=user,
        resource=resource,
        duration_minutes=60,
        justification="Investigating the checkout outage",
        level=level,
    )
    grant = services.approve_request(request, approver=approver)
    assert grant is not None
    return grant


def _refusals() -> Any:
    return AuditEvent.objects.filter(action=ZeroAction.GRANT_RULE_REFUSED)


def test_a_malformed_criterion_never_holds_back_a_revocation(
    sim: ZeroSimulator, resource: Resource, bob: Any
) -> None:
    plain = AccessLevelFactory(resource=resource, slug="full", rank=1, criteria=[])
    office = AccessLevelFactory(resource=resource, slug="office", rank=0, criteria=BAD_CIDR)
    oscar = _approve_at("oscar@example.com", resource, plain, bob)
    assert sync_resource(resource.pk).live == 1
    assert sim.evaluate("jit-grafana", "oscar@example.com")

    peggy = _approve_at("peggy@example.com", resource, office, bob)
    services.revoke_grant(oscar, actor=bob, reason="left the team")
    outcome = sync_resource(resource.pk)

    assert outcome.status == SYNCED and outcome.removed == 1
    assert not sim.evaluate("jit-grafana", "oscar@example.com")  # enforced
    oscar.refresh_from_db()
    assert oscar.sync_status == SyncStatus.REMOVED
    peggy.refresh_from_db()
    assert peggy.sync_status == SyncStatus.ERROR
    assert "10.0.0.0/33" in peggy.sync_error and "prefix length" in peggy.sync_error
    policy = sim.policy_by_name("jit-grafana")
    assert policy is not None and "peggy@example.com" not in str(policy["ppl"])
    (entry,) = _refusals()
    assert entry.target_id == str(peggy.pk)
    assert entry.details["criteria"] == BAD_CIDR
    # Passes that find the same refusal do not audit it again.
    assert sync_resource(resource.pk, force=True).status == SYNCED
    assert _refusals().count() == 1


def test_a_refusal_the_portal_did_not_foresee_leaves_out_only_the_new_rule(
    sim: ZeroSimulator, resource: Resource, bob: Any
) -> None:
    """Zero refuses the write for a reason the portal's checks do not know (the simulator's
    ``refused_ppl`` fault): the sync writes again without the rules Zero did not already
    hold, so the revocation in the same pass still takes effect."""
    plain = AccessLevelFactory(resource=resource, slug="full", rank=1, criteria=[])
    odd = AccessLevelFactory(
        resource=resource, slug="odd", rank=0, criteria=[{"http_path": {"starts_with": "/x"}}]
    )
    oscar = _approve_at("oscar@example.com", resource, plain, bob)
    alice = _approve_at("alice@example.com", resource, plain, bob)
    sync_resource(resource.pk)
    sim.configure(refused_ppl=['"/x"'])
    trent = _approve_at("trent@example.com", resource, odd, bob)
    services.revoke_grant(oscar, actor=bob, reason="left the team")

    outcome = sync_resource(resource.pk)

    assert outcome.status == SYNCED and outcome.removed == 1
    assert not sim.evaluate("jit-grafana", "oscar@example.com")
    assert sim.evaluate("jit-grafana", "alice@example.com")  # a rule Zero held stays
    trent.refresh_from_db()
    assert trent.sync_status == SyncStatus.ERROR
    assert "Zero refused the policy when this grant's rule was added" in trent.sync_error
    assert "400" in trent.sync_error
    alice.refresh_from_db()
    assert alice.sync_status == SyncStatus.LIVE
    assert _refusals().get().target_id == str(trent.pk)


def test_when_zero_refuses_the_base_rules_the_pass_fails_as_before(
    sim: ZeroSimulator, resource: Resource, bob: Any
) -> None:
    approve("alice@example.com", resource, bob)
    sync_resource(resource.pk)
    sim.configure(refused_ppl=['"/odd"'])
    Resource.objects.filter(pk=resource.pk).update(
        base_ppl=[{"allow": {"and": [{"http_path": {"is": "/odd"}}]}}]
    )
    carol = approve("carol@example.com", resource, bob)

    outcome = sync_resource(resource.pk)

    # Without carol's new rule Zero still refuses: her rule was not the cause, so she is
    # not blamed; the pass fails and says why, as it always did.
    assert outcome.status == FAILED and "400" in outcome.error
    carol.refresh_from_db()
    assert carol.sync_status == SyncStatus.ERROR
    assert "left out" not in carol.sync_error and "400" in carol.sync_error
    assert not _refusals().exists()


def test_stored_base_rules_that_are_now_invalid_are_refused_and_shown(
    sim: ZeroSimulator, resource: Resource, bob: Any, superuser: Any
) -> None:
    # Saved before the portal checked CIDRs (the form refuses it now).
    Resource.objects.filter(pk=resource.pk).update(
        base_ppl=[{"allow": {"and": [{"source_ip": "10.0.0.0/33"}]}}]
    )
    level = AccessLevelFactory(resource=resource, slug="office", rank=0, criteria=BAD_CIDR)
    approve("alice@example.com", resource, bob)

    outcome = sync_resource(resource.pk)

    assert outcome.status == FAILED and not outcome.transient
    assert "the resource's base PPL is invalid" in outcome.error
    assert "10.0.0.0/33" in PolicySync.objects.get(resource=resource).last_error
    assert sim.policy_by_name("jit-grafana") is None  # nothing Zero would refuse was sent
    page = superuser.get(f"/admin/access/resource/{resource.pk}/change/").content.decode()
    assert "Base rules: rule[0].allow.and[0].source_ip" in page
    assert f"Level {level.name}: criteria[0].source_ip" in page
    assert "prefix length must be 0-32" in page
