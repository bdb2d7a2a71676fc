"""``manage.py check_connectivity``: can this deployment reach what it depends on?

One line per check, ``ok``, ``skip`` or ``FAIL`` with the reason: for every configured
cluster (``ZERO_CLUSTERS``; the checks carry ``[name]`` when there are several) the Zero
token exchange, the cluster's namespace (and whether it was read or fell back to the
cluster id), listing its policies (every page), the cluster's changeset mode and write
access; then the JWKS endpoint, the task broker, and each audit stream destination
(``apps.audit.stream.probe``). With several clusters, one more
``FAIL  cluster NAME`` line per failing cluster. Exit 0 when nothing failed, 1 otherwise.
No token or password is printed.

For every ConfigService target (Core, or Zero/Enterprise as flavour ``api``;
``POMERIUM_CORE_URL``, ``POMERIUM_TARGETS``): ``GetServerInfo`` (the flavour and version
the server reports), write access (a scratch policy created and deleted: ConfigService has
no changesets, so nothing waits for a human), and the expiry guarantee that applies: a
target with the ``date`` criterion closes a grant's rule by itself, one without (Core) has
it closed by the portal's worker. The first failure of a target ends its checks, so a bad
shared secret is one readable line.

The write check proves the token may write policies without changing anything: it
re-PUTs one portal-managed policy with exactly the content Zero holds. With no managed
policy yet it creates and deletes a scratch policy named ``jitportal-connectivity-check``,
but only when the cluster auto-applies changesets; otherwise that would leave two
foreign changes in the pending changeset, so the check is skipped and says why.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from kombu import Connection

from apps.access import clusters, targets
from apps.audit.stream import probe as audit_stream
from apps.pomerium import identity, port, remote
from apps.pomerium.client import ZeroClient, ZeroPermanentError, default_cluster_id
from apps.pomerium.configservice import ConfigServiceClient
from apps.pomerium.models import PolicySync
from apps.ppl import DENY_ALL_RULE

POLICY_PREFIX = "jit-"
SCRATCH_POLICY = "jitportal-connectivity-check"
SCRATCH_NOTE = "Created and deleted at once by jitportal's check_connectivity."


class Skipped(Exception):
    """A check that cannot run here; printed as ``skip``, not counted as a failure."""


def _managed_policy_ids(cluster_id: str | None = None) -> set[str]:
    """Every policy the portal manages, or only those in ``cluster_id`` (rows not synced
    since clusters were recorded count as the default cluster's)."""
    rows = PolicySync.objects.exclude(remote_policy_id="")
    if cluster_id is not None:
        holders = [cluster_id]
        if cluster_id == default_cluster_id():
            holders.append("")
        rows = rows.filter(cluster_id__in=holders)
    return set(rows.values_list("remote_policy_id", flat=True))


def _secrets() -> list[str]:
    found = [
        settings.API_USER_TOKEN,
        settings.AUDIT_STREAM_TOKEN,
        settings.POMERIUM_SHARED_SECRET,
        settings.POMERIUM_API_TOKEN,
    ]
    password = urlsplit(settings.CELERY_BROKER_URL).password
    if password:
        found.append(password)
    return [s for s in found if s]


def _clean(text: str) -> str:
    """One line, with every secret we know of removed."""
    for secret in sorted(_secrets(), key=len, reverse=True):
        text = text.replace(secret, "[REDACTED]")
    return " ".join(text.split())


class Command(BaseCommand):
    help = "Check Zero, the JWKS endpoint and the broker; one ok/FAIL line each."

    def handle(self, *args: Any, **options: Any) -> None:
        configured = clusters.zero_clusters()
        several = len(clusters.configured()) > 1
        failures = 0
        total = 0
        failing: list[tuple[str, str]] = []  # (cluster name, its first failure)
        for cluster_name, cluster_id in configured.items():
            # A fresh client per cluster: really exchange a token for each.
            client = ZeroClient.from_settings(cluster_id)
            self._auto_apply = False
            suffix = f" [{cluster_name}]" if several else ""
            checks: list[tuple[str, Callable[[], str]]] = [
                ("Zero token exchange", partial(self._token, client)),
                ("Zero namespace lookup", partial(self._namespace, client)),
                ("Zero policy list access", partial(self._policies, client)),
                ("Zero changeset mode", partial(self._changesets, client)),
                ("Zero policy write access", partial(self._write, client)),
            ]
            try:
                failed = self._run([(name + suffix, check) for name, check in checks])
            finally:
                client.session.close()
            failures += len(failed)
            total += len(checks)
            if failed:
                failing.append((cluster_name, failed[0]))
        for name, target in targets.configured().items():
            if target.flavour == targets.ZERO:
                continue
            failed = self._configservice(name, target, several)
            failures += len(failed)
            total += 3
            if failed:
                failing.append((name, failed[0]))
        others = self._run(
            [("JWKS endpoint", self._jwks), ("Task broker", self._broker), *audit_stream.checks()]
        )
        failures += len(others)
        total += 2 + len(audit_stream.checks())
        if several:
            # One line per failing cluster, so an operator sees at once which one is down.
            for cluster_name, first in failing:
                address = clusters.configured().get(cluster_name, "")
                self.stdout.write(f"FAIL  cluster {cluster_name} ({address}): {first}")
        if failures:
            where = (
                f" (clusters: {', '.join(n for n, _ in failing)})" if several and failing else ""
            )
            raise CommandError(f"{failures} of {total} checks failed{where}", returncode=1)

    def _configservice(self, name: str, target: targets.Target, several: bool) -> list[str]:
        """The checks of one ConfigService target; the first failure ends them."""
        store = port.store_for(name)
        assert isinstance(store, ConfigServiceClient)
        suffix = f" [{name}]" if several else ""
        checks: list[tuple[str, Callable[[], str]]] = [
            ("Pomerium server info" + suffix, partial(self._server_info, store, target)),
            ("Pomerium policy write access" + suffix, partial(self._scratch, store)),
            ("Pomerium expiry guarantee" + suffix, partial(self._guarantee, name)),
        ]
        return self._run(checks, stop_at_failure=True)

    def _server_info(self, store: ConfigServiceClient, target: targets.Target) -> str:
        info = store.server_info()
        server = str(info.get("serverType") or "SERVER_TYPE_UNKNOWN")
        flavour = server.removeprefix("SERVER_TYPE_").lower()
        version = str(info.get("version") or "unknown version")
        return f"{target.address} is Pomerium {flavour} {version} (target flavour {target.flavour})"

    def _scratch(self, store: ConfigServiceClient) -> str:
        scratch = store.create_policy(
            {"name": SCRATCH_POLICY, "ppl": [DENY_ALL_RULE], "description": SCRATCH_NOTE}
        )
        store.delete_policy(str(scratch["id"]))
        return f"created and deleted the scratch policy {SCRATCH_POLICY!r}"

    def _guarantee(self, name: str) -> str:
        if targets.closes_by_itself(name):
            return "a grant's rule closes by itself in Pomerium (date criterion) at its end"
        return (
            "a grant's rule is closed by jitportal's worker (Core has no date criterion): "
            "expiry is only as punctual as the worker"
        )

    def _run(
        self, checks: list[tuple[str, Callable[[], str]]], *, stop_at_failure: bool = False
    ) -> list[str]:
        """Run and print each check; returns the failures as "check: reason"."""
        failed: list[str] = []
        for name, check in checks:
            if failed and stop_at_failure:
                break
            try:
                detail = check()
            except Skipped as exc:
                self.stdout.write(f"skip  {name}: {_clean(str(exc))}")
            except Exception as exc:
                reason = _clean(str(exc) or type(exc).__name__)
                failed.append(f"{name}: {reason}")
                self.stdout.write(f"FAIL  {name}: {reason}")
            else:
                self.stdout.write(f"ok    {name}: {_clean(detail)}")
        return failed

    def _token(self, client: ZeroClient) -> str:
        lifetime = client.authenticate()
        return f"ID token obtained from {client.base_url}, valid for {lifetime:.0f} s"

    def _namespace(self, client: ZeroClient) -> str:
        namespace = client.namespace_id()
        return f"cluster {client.cluster_id} uses namespace {namespace} ({client.namespace_source})"

    def _policies(self, client: ZeroClient) -> str:
        policies = client.list_policies()
        managed = [p for p in policies if str(p.get("name", "")).startswith(POLICY_PREFIX)]
        return f"{len(policies)} policies readable, {len(managed)} named {POLICY_PREFIX}*"

    def _changesets(self, client: ZeroClient) -> str:
        self._auto_apply = client.auto_apply_changesets(max_age=0)
        if self._auto_apply:
            return "the cluster auto-applies changesets: API writes take effect at once"
        pending = client.list_changesets(status="pending")
        own = identity.own_identity(client.cluster_id)
        lines = [
            f"the portal's own Zero user: {own} ({own.source})"
            if own
            else "the portal's own Zero user is not known yet: it is learnt from the first "
            "policy the portal creates, or set ZERO_API_USER_ID; until then no changeset "
            "counts as the portal's own"
        ]
        for changeset in pending:
            changeset_id = str(changeset.get("id"))
            foreign = remote.foreign_changes(client, changeset_id, {}, own)
            if foreign:
                lines.append(
                    f"pending changeset {changeset.get('id')} holds {len(foreign)} change(s) "
                    "the portal did not make: a human must apply it in the Zero console"
                )
        applying = (
            "the portal applies changesets that hold only its own writes"
            if settings.ZERO_APPLY_CHANGESETS
            else "ZERO_APPLY_CHANGESETS is off: a human applies every changeset"
        )
        summary = f"auto-apply is off; {len(pending)} pending changeset(s); {applying}"
        return "; ".join([summary, *lines])

    def _write(self, client: ZeroClient) -> str:
        for policy_id in sorted(_managed_policy_ids(client.cluster_id)):
            try:
                policy = client.get_policy(policy_id)
            except ZeroPermanentError as exc:
                if exc.status == 404:
                    continue
                raise
            client.replace_policy(policy_id, policy)
            return f"re-wrote managed policy {policy.get('name')!r} with its current content"
        if not getattr(self, "_auto_apply", False):
            raise Skipped(
                "no managed policy yet, and the cluster does not auto-apply: a scratch "
                "policy would sit in the pending changeset. The first sync proves it"
            )
        scratch = client.create_policy(
            {"name": SCRATCH_POLICY, "ppl": [DENY_ALL_RULE], "description": SCRATCH_NOTE}
        )
        client.delete_policy(str(scratch["id"]))
        return f"created and deleted the scratch policy {SCRATCH_POLICY!r}"

    def _jwks(self) -> str:
        url = settings.JWKS_ENDPOINT
        if not url:
            raise ValueError("JWKS_ENDPOINT is not set")
        response = requests.get(url, timeout=settings.JWKS_TIMEOUT_SECONDS)
        if response.status_code != 200:
            raise ValueError(f"GET {url} returned {response.status_code}")
        try:
            keys = response.json()["keys"]
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"{url} did not answer with a JSON key set") from None
        if not isinstance(keys, list) or not keys:
            raise ValueError(f"{url} publishes no keys")
        return f"{len(keys)} key(s) at {url}"

    def _broker(self) -> str:
        with Connection(
            settings.CELERY_BROKER_URL,
            transport_options=dict(settings.CELERY_BROKER_TRANSPORT_OPTIONS),
            connect_timeout=3,
        ) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=1)
            return f"connected to {conn.as_uri()}"
