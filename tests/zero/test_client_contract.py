"""Every body the portal's Zero client sends, and every answer it reads, against the written
contract (``apps/pomerium/contract``), over real HTTP to the simulator.

The simulator refuses bodies that break the contract, so a green sync test already proves
much; these tests say it explicitly and also check the answers, so neither side can drift
from the schema without a test naming the exchange.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from apps.pomerium import contract
from apps.pomerium.client import ZeroClient
from devtools.zerosim.simulator import ZeroSimulator

# (method, path below /api/v0) -> (request schema or None, answer schema or None)
EXCHANGES: list[tuple[str, re.Pattern[str], str | None, str | None]] = [
    ("POST", re.compile(r"^/token$"), "TokenRequest", "TokenResponse"),
    ("GET", re.compile(r"^/organizations/[^/]+/clusters/[^/]+$"), None, "Cluster"),
    ("GET", re.compile(r"^/organizations/[^/]+/clusters/[^/]+/settings$"), None, "Settings"),
    ("GET", re.compile(r"^/organizations/[^/]+/policies$"), None, "PolicyList"),
    ("POST", re.compile(r"^/organizations/[^/]+/policies$"), "PolicyProperties", "Policy"),
    ("GET", re.compile(r"^/organizations/[^/]+/policies/[^/]+$"), None, "Policy"),
    ("PUT", re.compile(r"^/organizations/[^/]+/policies/[^/]+$"), "PolicyProperties", "Policy"),
    ("DELETE", re.compile(r"^/organizations/[^/]+/policies/[^/]+$"), None, None),
    ("GET", re.compile(r"^/organizations/[^/]+/routes$"), None, "RouteList"),
    ("GET", re.compile(r"^/organizations/[^/]+/changesets$"), None, "ChangesetList"),
    ("POST", re.compile(r"^/organizations/[^/]+/changesets/[^/]+/apply$"), None, "Changeset"),
    ("GET", re.compile(r"^/organizations/[^/]+/activityLogs$"), None, "ActivityLogList"),
]


@dataclass
class Exchange:
    method: str
    path: str
    body: object
    status: int
    answer: object


class RecordingSession(requests.Session):
    """A plain ``requests`` session that remembers what went over the wire."""

    def __init__(self, api_prefix: str) -> None:
        super().__init__()
        self.api_prefix = api_prefix
        self.exchanges: list[Exchange] = []

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        response = super().request(method, url, *args, **kwargs)
        path = str(url).split(self.api_prefix, 1)[1].split("?", 1)[0]
        try:
            answer = response.json() if response.content else None
        except ValueError:
            answer = response.text
        self.exchanges.append(
            Exchange(str(method), path, kwargs.get("json"), response.status_code, answer)
        )
        return response


def check(exchanges: list[Exchange]) -> set[str]:
    """Validate every exchange; return the schema names that were exercised."""
    used: set[str] = set()
    for ex in exchanges:
        matches = [
            (req, ans) for m, rx, req, ans in EXCHANGES if m == ex.method and rx.match(ex.path)
        ]
        assert matches, f"the client called {ex.method} {ex.path}, which the contract lacks"
        request_schema, answer_schema = matches[0]
        if request_schema:
            assert contract.errors(request_schema, ex.body) == [], (ex.method, ex.path, ex.body)
            used.add(request_schema)
        else:
            assert ex.body is None, f"{ex.method} {ex.path} takes no body"
        if answer_schema and 200 <= ex.status < 300:
            assert contract.errors(answer_schema, ex.answer) == [], (ex.path, ex.answer)
            used.add(answer_schema)
    return used


@pytest.fixture
def recorded(sim: ZeroSimulator) -> Iterator[tuple[ZeroClient, RecordingSession]]:
    session = RecordingSession("/api/v0")
    client = ZeroClient(
        sim.url, sim.api_token, sim.organization_id, sim.cluster_id, timeout=5, session=session
    )
    yield client, session
    session.close()


RULE = {
    "allow": {
        "and": [
            {"email": {"is": "First.Last@Corp.com"}},
            {"date": {"after": "2026-09-01T09:00:00Z", "before": "2026-09-01T17:00:00Z"}},
        ]
    }
}


def test_every_client_call_sends_and_reads_contract_bodies(
    sim: ZeroSimulator, recorded: tuple[ZeroClient, RecordingSession]
) -> None:
    client, session = recorded
    sim.auto_apply = False
    client.authenticate()
    client.namespace_id()
    created = client.create_policy({"name": "jit-contract", "ppl": [RULE]})
    client.get_policy(str(created["id"]))
    client.replace_policy(str(created["id"]), {**created, "ppl": RULE})
    client.find_policies_by_name("jit-contract")
    client.list_routes()
    assert client.auto_apply_changesets(max_age=0) is False
    (pending,) = client.list_changesets(status="pending")
    entries = client.activity_logs(entityType="policy", entityId=str(created["id"]), limit=5)
    assert entries
    assert client.find_changeset(str(pending["id"])) is not None
    client.apply_changeset(str(pending["id"]))
    client.activity_logs(changesetId=str(pending["id"]))
    client.delete_policy(str(created["id"]))

    used = check(session.exchanges)
    assert {"TokenRequest", "PolicyProperties", "Policy", "Changeset", "ActivityLogList"} <= used
    # ppl went over the wire as structures, never as text.
    bodies = [ex.body for ex in session.exchanges if isinstance(ex.body, dict) and "ppl" in ex.body]
    assert [type(b["ppl"]) for b in bodies] == [list, dict]


def test_a_string_ppl_is_refused_by_the_simulator_and_changes_nothing(sim: ZeroSimulator) -> None:
    token = requests.post(f"{sim.url}/token", json={"refreshToken": sim.api_token}, timeout=5)
    headers = {"Authorization": f"Bearer {token.json()['idToken']}"}
    body = {
        "name": "jit-text",
        "description": "",
        "explanation": "",
        "remediation": "",
        "enforced": False,
        "namespaceId": sim.namespace_id,
        "ppl": json.dumps([RULE]),
    }
    assert contract.errors("PolicyProperties", body)  # the schema itself says no
    answer = requests.post(
        f"{sim.url}/organizations/{sim.organization_id}/policies",
        json=body,
        headers=headers,
        timeout=5,
    )
    assert answer.status_code == 400
    assert sim.policy_by_name("jit-text") is None
    assert sim.write_count == 0


@pytest.mark.django_db
def test_a_whole_sync_speaks_the_contract(
    sim: ZeroSimulator, recorded: tuple[ZeroClient, RecordingSession], zero_settings: Any
) -> None:
    """Approve, revoke and reconcile with auto-apply off: the widest set of calls a sync
    makes, every one of them checked."""
    from apps.access import services
    from apps.pomerium import sync
    from tests.factories import ResourceFactory, UserFactory
    from tests.zero.helpers import approve

    client, session = recorded
    sim.auto_apply = False
    resource = ResourceFactory(slug="grafana")
    approver = UserFactory(is_superuser=True)
    grant = approve("First.Last@Corp.com", resource, approver)
    sync.sync_resource(resource.pk, client=client)
    services.revoke_grant(grant, actor=approver, reason="done")
    sync.sync_resource(resource.pk, client=client)
    sync.sync_resource(resource.pk, client=client, force=True)
    used = check(session.exchanges)
    assert {"PolicyProperties", "Policy", "ActivityLogList", "ChangesetList"} <= used
