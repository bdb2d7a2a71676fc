"""The sync against the Core stand-in (devtools/coresim) over HTTP, with a real Celery
worker: a grant allowed with its exact email and removed on revocation, a hand edit
repaired and audited, paging past a page cap, check_connectivity's refusal of a bad secret."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from apps.access import services, targets
from apps.access.models import Grant
from apps.access.states import SyncStatus
from apps.audit.models import AuditEvent
from apps.pomerium import port
from apps.pomerium.actions import ZeroAction
from apps.pomerium.models import PolicySync
from apps.pomerium.sync import sync_resource
from devtools.coresim.simulator import CoreSimulator
from tests.conftest import redis_available, redis_url, require_service
from tests.factories import AccessLevelFactory, ResourceFactory, UserFactory
from tests.support.celery_worker import CeleryWorker, database_url, purge_broker
from tests.zero.live import _point_celery_at, approver, eventually, pending

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture(scope="module")
def core() -> Iterator[CoreSimulator]:
    with CoreSimulator() as sim:
        yield sim


@pytest.fixture
def core_live(
    settings: Any, django_db_blocker: Any, core: CoreSimulator
) -> Iterator[tuple[CoreSimulator, CeleryWorker]]:
    """A worker configured with ONLY Core settings, and this process pointed at it."""
    from jitportal.celery import app

    with django_db_blocker.unblock():
        vendor, settings_dict = connection.vendor, dict(connection.settings_dict)
    require_service("PostgreSQL", vendor == "postgresql", "the worker needs a shared database")
    broker = redis_url()
    require_service("Redis", redis_available(broker), f"no answer at {broker}")
    purge_broker(broker)
    core.reset()
    env = {
        "DEBUG": "true",
        "LOG_FORMAT": "text",
        "DATABASE_URL": database_url(settings_dict),
        "CELERY_BROKER_URL": broker,
        "POMERIUM_CORE_URL": core.url,
        "POMERIUM_SHARED_SECRET": core.shared_secret,
        "PORTAL_URL": "https://jit.example.com",
        "API_USER_TOKEN": "",
        "CLUSTER_ID": "",
    }
    settings.CELERY_BROKER_URL = broker
    settings.ZERO_SYNC_ENABLED = True
    settings.CLUSTER_ID = ""
    settings.ZERO_CLUSTERS = {}
    settings.POMERIUM_CORE_URL = core.url
    settings.POMERIUM_SHARED_SECRET = core.shared_secret
    settings.PORTAL_URL = "https://jit.example.com"
    port.reset_store_cache()
    saved = app.conf.broker_url, app.conf.broker_transport_options
    _point_celery_at(app, broker, {})
    worker = CeleryWorker(env, pool="prefork", concurrency=2)
    try:
        yield core, worker.start()
    except BaseException:
        print(worker.log_tail())
        raise
    finally:
        worker.stop()
        worker.log_path.unlink(missing_ok=True)
        _point_celery_at(app, *saved)
        port.reset_store_cache()


def test_approve_allows_the_exact_email_and_revoke_denies(core_live) -> None:
    core, worker = core_live
    core.add_route("grafana", "https://grafana.example.com")
    resource = ResourceFactory(slug="grafana", routes=["grafana"])
    boss = approver()
    (req,) = pending([resource], 1)

    grant = services.approve_request(req, approver=boss)

    assert grant is not None
    email = grant.email
    assert eventually(lambda: core.evaluate("grafana", email)), "never allowed"
    assert not core.evaluate("grafana", email.upper())
    assert not core.evaluate("grafana", "mallory@example.com")
    assert eventually(lambda: Grant.objects.get(pk=grant.pk).sync_status == SyncStatus.LIVE)
    assert core.route("grafana")["policyIds"] == [PolicySync.objects.get().remote_policy_id]

    services.revoke_grant(grant, actor=boss, reason="done")

    assert eventually(lambda: not core.evaluate("grafana", email)), "still allowed"
    assert eventually(lambda: Grant.objects.get(pk=grant.pk).sync_status == SyncStatus.REMOVED)
    assert core.shared_secret not in worker.log_text()


def test_a_hand_edit_is_repaired_and_audited_past_25_foreign_policies(core_live) -> None:
    core, _ = core_live
    core.configure(page_cap=10)
    core.seed_foreign_policies(25)
    core.add_route("wiki", "https://wiki.example.com")
    resource = ResourceFactory(slug="wiki", routes=["wiki"])
    assert sync_resource(resource.pk).ok
    state = PolicySync.objects.get(resource=resource)
    core.hand_edit(state.remote_policy_id, source_ppl='[{"allow": {"or": [{"accept": true}]}}]')
    assert core.evaluate("wiki", "anyone@example.com")

    outcome = sync_resource(resource.pk, force=True)

    assert outcome.ok and outcome.drift
    assert not core.evaluate("wiki", "anyone@example.com")
    assert AuditEvent.objects.filter(action=ZeroAction.ZERO_DRIFT_REPAIRED).count() == 1
    assert len([p for p in core.policies() if p.get("name") == "jit-wiki"]) == 1


def test_a_bad_shared_secret_fails_check_connectivity_in_one_line(
    settings: Any, core: CoreSimulator
) -> None:
    settings.CLUSTER_ID = ""
    settings.ZERO_CLUSTERS = {}
    settings.POMERIUM_CORE_URL = core.url
    settings.POMERIUM_SHARED_SECRET = base64.b64encode(b"w" * 32).decode()
    port.reset_store_cache()
    out = StringIO()

    with pytest.raises(CommandError):
        call_command("check_connectivity", stdout=out)

    lines = [line for line in out.getvalue().splitlines() if "Pomerium" in line]
    assert len(lines) == 1 and lines[0].startswith("FAIL  Pomerium server info")
    assert "unauthenticated" in lines[0]
    assert settings.POMERIUM_SHARED_SECRET not in out.getvalue()


def test_a_read_only_level_allows_get_and_denies_post(core_live) -> None:
    core, _ = core_live
    core.add_route("grafana", "https://grafana.example.com")
    grafana = ResourceFactory(slug="grafana", routes=["grafana"])
    read = AccessLevelFactory(
        resource=grafana,
        slug="read-only",
        rank=1,
        criteria=[{"http_method": {"in": ["GET", "HEAD", "OPTIONS"]}}],
    )
    boss = approver()
    alice = UserFactory(username="idp|alice", email="alice@example.com")
    req = services.submit_request(
        requester=alice,
        resource=grafana,
        level=read,
        duration_minutes=60,
        justification="Checking the dashboards for INC-7",
    )

    grant = services.approve_request(req, approver=boss)

    assert grant is not None
    assert eventually(lambda: Grant.objects.get(pk=grant.pk).sync_status == SyncStatus.LIVE)
    assert core.evaluate("grafana", "alice@example.com", method="GET", path="/d/home")
    assert not core.evaluate("grafana", "alice@example.com", method="POST", path="/api/x")


def test_a_criterion_core_refuses_shows_on_the_grant_with_cores_message(
    settings: Any, core: CoreSimulator
) -> None:
    """A Core declared as an ``api`` target (Enterprise) gets ``date`` rules; Core refuses
    them, and the grant says so in Core's words while the policy is still written."""
    core.reset()
    core.add_route("wiki", "https://wiki.example.com")
    settings.CLUSTER_ID = ""
    settings.ZERO_CLUSTERS = {}
    settings.POMERIUM_TARGETS = {
        "default": targets.Target("default", targets.API, core.url),
    }
    settings.POMERIUM_API_TOKEN = core.token(ttl=3600)
    settings.PORTAL_URL = "https://jit.example.com"
    settings.ZERO_SYNC_ENABLED = False  # this test runs the pass itself
    port.reset_store_cache()
    resource = ResourceFactory(slug="wiki", routes=["wiki"])
    boss = approver()
    (req,) = pending([resource], 1)
    grant = services.approve_request(req, approver=boss)
    assert grant is not None

    outcome = sync_resource(resource.pk)

    grant.refresh_from_db()
    assert grant.sync_status == SyncStatus.ERROR
    assert "unknown policy criterion: date" in grant.sync_error
    assert outcome.ok  # every other change (here: the base policy) was still written
    assert core.policy_by_name("jit-wiki") is not None
    assert not core.evaluate("wiki", grant.email)
    port.reset_store_cache()
