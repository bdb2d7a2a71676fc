"""sync_zero and check_connectivity: output, exit codes, and no secrets in either."""

from __future__ import annotations

import io
import json
import socket
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps import ppl
from apps.access import services
from apps.access.models import Resource
from apps.audit.models import AuditAction, AuditEvent
from apps.pomerium.actions import ZeroAction
from apps.pomerium.models import PolicySync
from devtools.zerosim.simulator import ZeroSimulator
from tests.factories import ResourceFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("zero_settings")]


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def resource() -> Resource:
    resource = ResourceFactory(slug="grafana", name="Grafana admin")
    user = UserFactory(email="alice@example.com")
    bob = UserFactory(username="idp|bob", email="bob@example.com", groups=["approvers"])
    req = services.submit_request(
        requester=user, resource=resource, duration_minutes=60, justification="Need to debug"
    )
    services.approve_request(req, approver=bob)
    resource.refresh_from_db()
    return resource


# ----------------------------------------------------------------------------- sync_zero


def test_dry_run_prints_desired_ppl_and_diff_and_writes_nothing(
    sim: ZeroSimulator, resource: Resource
) -> None:
    out, _ = run("sync_zero", "--resource", "grafana", "--dry-run")

    assert "# grafana: Zero policy 'jit-grafana'" in out
    body = out.split("\n", 1)[1].split("\n(Zero has no policy")[0]
    rules = json.loads(body)
    assert rules[0]["allow"]["and"][0] == {"email": {"is": "alice@example.com"}}
    assert "a sync creates it" in out
    assert sim.write_count == 0 and not PolicySync.objects.exists()


def test_dry_run_shows_a_unified_diff_against_zero(sim: ZeroSimulator, resource: Resource) -> None:
    run("sync_zero", "--resource", "grafana")
    sim.hand_edit("jit-grafana", [ppl.DENY_ALL_RULE], by_email="eve@example.com")

    out, _ = run("sync_zero", "--resource", "grafana", "--dry-run")

    diff = out[out.index("--- zero/") :]
    assert "+++ desired" in diff
    assert any(line.startswith("+") and "alice@example.com" in line for line in diff.splitlines())
    assert any(line.startswith("-") and '"reject": true' in line for line in diff.splitlines())
    assert sim.write_count == 1  # still only the first sync's write


def test_sync_runs_a_forced_sync_and_prints_the_outcome(
    sim: ZeroSimulator, resource: Resource
) -> None:
    out, _ = run("sync_zero", "--resource", "grafana")

    assert "grafana: synced generation" in out and "created" in out
    assert sim.evaluate("jit-grafana", "alice@example.com")
    again, _ = run("sync_zero", "--resource", "grafana")
    assert "(no difference)" in again and "unchanged" in again
    assert AuditEvent.objects.filter(action=ZeroAction.ZERO_POLICY_CREATED).count() == 1


def test_without_a_slug_every_resource_is_synced(sim: ZeroSimulator, resource: Resource) -> None:
    ResourceFactory(slug="db")

    out, _ = run("sync_zero")

    assert "grafana: synced" in out and "db: synced" in out
    assert sim.policy_by_name("jit-db") is not None


def test_unknown_slug_exits_2_with_one_line(sim: ZeroSimulator) -> None:
    with pytest.raises(CommandError) as caught:
        run("sync_zero", "--resource", "nope")
    assert caught.value.returncode == 2
    assert str(caught.value) == "unknown resource 'nope'"


def test_zero_unreachable_exits_1_with_one_line_and_no_token(
    settings: Any, resource: Resource
) -> None:
    settings.ZERO_API_URL = f"http://127.0.0.1:{free_port()}/api/v0"
    settings.API_USER_TOKEN = "secret-api-token-123456"

    with pytest.raises(CommandError) as caught:
        run("sync_zero", "--resource", "grafana")

    message = str(caught.value)
    assert caught.value.returncode == 1
    assert message.startswith("Zero unreachable:") and "\n" not in message
    assert "secret-api-token-123456" not in message


def test_failed_sync_exits_1(sim: ZeroSimulator, resource: Resource) -> None:
    sim.set_faults(error_rate=1.0, faults_on_token=False)
    # Let the read for the diff through, then fail the sync's calls.
    calls = {"n": 0}
    original = sim.draw_fault

    def draw(*, is_token: bool) -> tuple[float, int | None]:
        calls["n"] += 1
        return (0.0, None) if calls["n"] <= 3 else original(is_token=is_token)

    sim.draw_fault = draw  # type: ignore[method-assign]
    out = io.StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("sync_zero", "--resource", "grafana", stdout=out)
    assert caught.value.returncode == 1
    assert "grafana: failed (transient)" in out.getvalue()


# ------------------------------------------------------------------- check_connectivity


CHECKS = [
    "Zero token exchange",
    "Zero namespace lookup",
    "Zero policy list access",
    "Zero changeset mode",
    "Zero policy write access",
    "JWKS endpoint",
    "Task broker",
]


def test_check_connectivity_all_ok(settings: Any, sim: ZeroSimulator) -> None:
    settings.CELERY_BROKER_URL = "memory://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}

    out, _ = run("check_connectivity")

    lines = out.splitlines()
    assert [line.split(":")[0] for line in lines] == [f"ok    {c}" for c in CHECKS]
    assert "namespace ns-sim (read from cluster cluster-sim)" in lines[1]
    assert "auto-applies changesets" in lines[3]
    # No managed policy yet and auto-apply on: a scratch policy proves write access.
    assert "created and deleted the scratch policy 'jitportal-connectivity-check'" in lines[4]
    assert sim.policy_by_name("jitportal-connectivity-check") is None
    assert "1 key(s)" in lines[5]
    assert sim.calls[("POST", "/token")] == 1
    assert sim.api_token not in out


def test_check_connectivity_proves_write_access_by_rewriting_a_managed_policy_unchanged(
    settings: Any, sim: ZeroSimulator
) -> None:
    settings.CELERY_BROKER_URL = "memory://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    from apps.pomerium.sync import sync_resource

    resource = ResourceFactory(slug="grafana")
    sync_resource(resource.pk)
    before = sim.policy_by_name("jit-grafana")
    writes = sim.write_count

    out, _ = run("check_connectivity")

    assert "ok    Zero policy write access: re-wrote managed policy 'jit-grafana'" in out
    assert sim.write_count == writes + 1
    after = sim.policy_by_name("jit-grafana")
    assert before is not None and after is not None
    assert {k: after[k] for k in ppl_keys} == {k: before[k] for k in ppl_keys}


ppl_keys = ("name", "description", "explanation", "remediation", "enforced", "ppl")


def test_check_connectivity_names_the_namespace_fallback_and_changesets_a_human_must_apply(
    settings: Any, sim: ZeroSimulator
) -> None:
    settings.CELERY_BROKER_URL = "memory://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    sim.auto_apply = False
    sim.configure(cluster_read_status=403)
    sim.namespace_id = sim.cluster_id  # a namespace the fallback can find
    sim.state.namespace_id = sim.cluster_id
    sim.state.hand_create("payroll", [ppl.DENY_ALL_RULE], by_email="mallory@example.com")

    out, _ = run("check_connectivity")

    lines = dict(line.split(": ", 1) for line in out.splitlines())
    assert (
        "fallback: reading cluster cluster-sim was refused (403)"
        in lines["ok    Zero namespace lookup"]
    )
    mode = lines["ok    Zero changeset mode"]
    assert "auto-apply is off; 1 pending changeset(s)" in mode
    assert "holds 1 change(s) the portal did not make: a human must apply it" in mode
    assert "would sit in the pending changeset" in lines["skip  Zero policy write access"]


def test_check_connectivity_reports_each_failure_and_exits_1(
    settings: Any, sim: ZeroSimulator
) -> None:
    settings.API_USER_TOKEN = "wrong-secret-token-987"
    settings.JWKS_ENDPOINT = f"http://127.0.0.1:{free_port()}/.well-known/pomerium/jwks.json"
    settings.CELERY_BROKER_URL = f"redis://:brokerpass@127.0.0.1:{free_port()}/0"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    out = io.StringIO()

    with pytest.raises(CommandError) as caught:
        call_command("check_connectivity", stdout=out)

    text = out.getvalue()
    assert caught.value.returncode == 1
    assert str(caught.value) == "6 of 7 checks failed"
    lines = text.splitlines()
    assert len(lines) == 7
    assert [line[:6] for line in lines] == ["FAIL  "] * 4 + ["skip  "] + ["FAIL  "] * 2
    assert "returned 401" in lines[0]
    assert "wrong-secret-token-987" not in text and "brokerpass" not in text


def test_check_connectivity_proves_each_audit_stream_destination(
    settings: Any, sim: ZeroSimulator
) -> None:
    from apps.audit.services import record_now
    from devtools.siem import HttpReceiver, SyslogReceiver

    settings.CELERY_BROKER_URL = "memory://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    record_now(AuditAction.AUDIT_EXPORTED, details={"format": "csv"})
    with HttpReceiver(token="stream-token-123") as https, SyslogReceiver() as syslog:
        settings.AUDIT_STREAM = [https.url, syslog.url]
        settings.AUDIT_STREAM_TOKEN = "stream-token-123"
        syslog.down()
        out = io.StringIO()

        with pytest.raises(CommandError) as caught:
            call_command("check_connectivity", stdout=out)

    text = out.getvalue()
    assert str(caught.value) == "1 of 9 checks failed"
    assert f"ok    Audit stream {https.url}: took entry #1 again" in text
    assert f"FAIL  Audit stream {syslog.url}: {syslog.url}: Connection refused" in text
    assert https.seqs() == [1] and "stream-token-123" not in text
