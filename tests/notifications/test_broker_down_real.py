"""Redis really down at commit: a portal process whose broker URL points at a closed port.

No patching: the service commits, Celery's own ``delay`` fails to connect, and the receivers
log it. Nothing is lost, because both consumers keep their work in rows the ticks re-read:
the notices stay ``pending`` in the outbox and the resource's sync generation stays ahead of
what Zero was told (``zero.tick`` catches up).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.support.processes import free_ports, run_manage

SCENARIO = """
import json
from django.core import mail
from apps.access import services
from apps.access.models import Resource
from apps.notifications.models import Notification
from apps.pomerium.sync import resources_to_tick
from tests.factories import ResourceFactory, UserFactory

alice = UserFactory(username="idp|alice", email="alice@example.com", groups=["engineering"])
bob = UserFactory(username="idp|bob", email="bob@example.com", groups=["approvers"])
resource = ResourceFactory(slug="grafana", name="Grafana", approver_groups=["approvers"])
req = services.submit_request(
    requester=alice, resource=resource, duration_minutes=60,
    justification="Debugging the checkout outage",
)
services.approve_request(req, approver=bob, note="ok")
resource.refresh_from_db()
req.refresh_from_db()
print(json.dumps({
    "state": req.state,
    "grant": req.grant.state,
    "notices": sorted((n.recipient, n.status) for n in Notification.objects.all()),
    "generation": resource.sync_generation,
    "tick": list(resources_to_tick()) == [resource.pk],
}))
"""


def test_nothing_is_lost_when_the_broker_is_down_at_commit(tmp_path: Path) -> None:
    (closed_port,) = free_ports(1)  # nothing listens there
    env = {
        **{k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")},
        "DEBUG": "true",
        "LOG_FORMAT": "text",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'portal.sqlite3'}",
        "CELERY_BROKER_URL": f"redis://127.0.0.1:{closed_port}/0",
        "ZERO_SYNC_ENABLED": "true",
        "API_USER_TOKEN": "token-for-the-test",
        "ORGANIZATION_ID": "org",
        "CLUSTER_ID": "cluster",
        "ZERO_API_URL": f"http://127.0.0.1:{closed_port}/api/v0",
        "PORTAL_URL": "http://portal.test",
    }
    migrated = run_manage("migrate", "--noinput", env=env)
    assert migrated.returncode == 0, migrated.stderr
    done = run_manage("shell", "-c", SCENARIO, env=env, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    facts = json.loads(done.stdout.strip().splitlines()[-1])

    assert facts["state"] == "approved"
    assert facts["grant"] == "active"
    # The broker refused each enqueue, and the process said so instead of failing the service.
    assert "could not enqueue the Zero sync" in done.stderr
    # The notices wait in the outbox for the tick; none was dropped.
    assert facts["notices"] == [
        ["alice@example.com", "pending"],
        ["bob@example.com", "pending"],
    ]
    # Zero was never told, and the tick knows it must catch up.
    assert facts["generation"] >= 1
    assert facts["tick"] is True
