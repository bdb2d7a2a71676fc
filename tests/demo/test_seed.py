"""The demo seed: every state present, idempotent, audit chain intact."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command

from apps.access.models import AccessRequest, Grant
from apps.access.states import GrantState, RequestState
from apps.accounts.models import User
from apps.audit import chain
from apps.audit.models import AuditEvent
from apps.audit.services import event_fields

pytestmark = pytest.mark.django_db


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def test_seed_has_every_state_and_is_idempotent(settings: Any) -> None:
    assert "story written" in seed()
    assert set(AccessRequest.objects.values_list("state", flat=True)) == set(RequestState.values)
    assert set(Grant.objects.values_list("state", flat=True)) == set(GrantState.values)
    assert Grant.objects.needing_review().count() == 1
    bob = User.objects.get(username="demo|bob")
    assert bob.is_staff and bob.has_perm("access.decide_accessrequest")
    counts = (AccessRequest.objects.count(), Grant.objects.count(), AuditEvent.objects.count())
    assert "story already present" in seed()
    assert (
        AccessRequest.objects.count(),
        Grant.objects.count(),
        AuditEvent.objects.count(),
    ) == counts
    assert chain.verify(event_fields(e) for e in AuditEvent.objects.in_chain_order()).ok


def test_the_demo_clusters_hold_a_resource_each(settings: Any) -> None:
    from apps.access.models import Resource
    from devtools.demo import supervisor

    settings.CLUSTER_ID = ""
    settings.ZERO_CLUSTERS = dict(supervisor.ZERO_CLUSTERS)
    settings.ZERO_DEFAULT_CLUSTER = supervisor.ZERO_DEFAULT_CLUSTER

    seed()

    placed = dict(Resource.objects.values_list("slug", "cluster"))
    assert placed == {
        "grafana-admin": "staging",
        "prod-db": "production",
        "billing-admin": "production",
    }


def test_with_one_cluster_every_demo_resource_is_in_the_default(settings: Any) -> None:
    from apps.access.models import Resource

    seed()

    assert set(Resource.objects.values_list("cluster", flat=True)) == {"default"}


def test_seed_offers_a_read_only_grafana_level_and_a_weekday_hours_resource() -> None:
    from apps.access.models import Resource

    seed()
    grafana = Resource.objects.get(slug="grafana-admin")
    assert list(grafana.levels.values_list("slug", "criteria")) == [
        ("read-only", [{"http_method": {"in": ["GET", "HEAD", "OPTIONS"]}}]),
        ("full", []),
    ]
    assert Resource.objects.get(slug="prod-db").schedule == {
        "days": "mon-fri",
        "after": "09:00",
        "before": "17:00",
        "timezone": "Europe/Berlin",
    }


def test_with_the_core_target_the_edge_console_lives_on_it_with_its_route(settings: Any) -> None:
    from apps.access.models import Resource
    from apps.access.pomerium_targets import parse
    from devtools.coresim.simulator import DEV_SHARED_SECRET
    from devtools.demo import supervisor

    settings.CLUSTER_ID = ""
    settings.ZERO_CLUSTERS = dict(supervisor.ZERO_CLUSTERS)
    settings.ZERO_DEFAULT_CLUSTER = supervisor.ZERO_DEFAULT_CLUSTER
    settings.POMERIUM_TARGETS = parse("edge=core:http://127.0.0.1:9")
    settings.POMERIUM_SHARED_SECRET = DEV_SHARED_SECRET

    seed()
    audited = AuditEvent.objects.filter(action="resource.changed").count()
    seed()  # idempotent: still one edge resource, one route, no new audit entry

    edge = Resource.objects.get(slug="edge-console")
    assert AuditEvent.objects.filter(action="resource.changed").count() == audited >= 1
    assert (edge.name, edge.cluster, edge.routes) == (
        "Edge router console",
        "edge",
        ["edge-console"],
    )
    assert Resource.objects.get(slug="grafana-admin").cluster == "staging"
