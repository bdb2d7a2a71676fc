"""``manage.py sync_zero [--resource SLUG] [--dry-run]``: show, and by default apply,
what the portal wants each managed Zero policy to be.

For each resource: the desired PPL as pretty JSON and a unified diff of the managed
properties (Zero's current version -> desired). Without ``--dry-run`` it then runs a
forced sync in this process and prints the outcome. Exit status: 0 done, 1 Zero
unreachable or a sync failed, 2 unknown resource. Tokens are never printed (the Zero
client redacts them from every message).
"""

from __future__ import annotations

import difflib
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from apps.access import clusters, targets
from apps.access.models import Resource
from apps.pomerium import desired, port
from apps.pomerium.client import ZeroError, ZeroPermanentError
from apps.pomerium.models import PolicySync
from apps.pomerium.port import PolicyStore
from apps.pomerium.sync import FAILED, resources_to_reconcile, sync_resource


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


class Command(BaseCommand):
    help = "Print the desired Zero policy and its diff against Zero; sync unless --dry-run."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--resource", metavar="SLUG", help="Only this resource.")
        parser.add_argument(
            "--dry-run", action="store_true", help="Show the desired policy and diff only."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        slug = options.get("resource")
        if slug:
            resource = Resource.objects.filter(slug=slug).first()
            if resource is None:
                raise CommandError(f"unknown resource {slug!r}", returncode=2)
            resources = [resource]
        else:
            resources = list(Resource.objects.filter(pk__in=resources_to_reconcile()))
        failed: list[str] = []
        for resource in sorted(resources, key=lambda r: r.slug):
            try:
                client = port.store_for(resource.cluster)
            except KeyError:
                self.stdout.write(
                    f"{resource.slug}: failed: cluster {resource.cluster!r} is not configured"
                )
                failed.append(resource.slug)
                continue
            self._show(client, resource)
            if options.get("dry_run"):
                continue
            outcome = sync_resource(resource.pk, force=True)
            self.stdout.write(f"{resource.slug}: {outcome.summary()}")
            if outcome.status == FAILED:
                failed.append(resource.slug)
        if failed:
            raise CommandError(f"sync failed for {', '.join(failed)}", returncode=1)

    def _show(self, client: PolicyStore, resource: Resource) -> None:
        props = desired.properties(resource, desired.desired_policy(resource, timezone.now()))
        who = targets.enforcer(resource.cluster)
        self.stdout.write(f"# {resource.slug}: {who} policy {resource.policy_name!r}")
        if len(clusters.configured()) > 1:
            self.stdout.write(f"# in {targets.describe(resource.cluster)} ({client.cluster_id})")
        self.stdout.write(desired.pretty(props["ppl"]))
        try:
            remote = self._remote(client, resource)
        except ZeroError as exc:
            raise CommandError(_one_line(f"{who} unreachable: {exc}"), returncode=1) from None
        if remote is None:
            self.stdout.write(f"({who} has no policy {resource.policy_name!r}: a sync creates it)")
            return
        before = desired.pretty(desired.managed_state(remote)).splitlines()
        after = desired.pretty(desired.managed_state(props)).splitlines()
        lines = list(
            difflib.unified_diff(
                before, after, f"zero/{remote.get('id')}", "desired", lineterm="", n=2
            )
        )
        self.stdout.write("\n".join(lines) if lines else "(no difference)")

    def _remote(self, client: PolicyStore, resource: Resource) -> dict[str, Any] | None:
        policy_id = (
            # A policy remembered in another cluster (a move not done yet) is not this one.
            PolicySync.objects.filter(resource=resource, cluster_id__in=[client.cluster_id, ""])
            .values_list("remote_policy_id", flat=True)
            .first()
        )
        if policy_id:
            try:
                return client.get_policy(policy_id)
            except ZeroPermanentError as exc:
                if exc.status != 404:
                    raise
        named = client.find_policies_by_name(resource.policy_name)
        if len(named) > 1:
            ids = ", ".join(sorted(str(p.get("id")) for p in named))
            raise CommandError(
                f"{len(named)} {targets.enforcer(resource.cluster)} policies are named "
                f"{resource.policy_name!r} ({ids}); delete all but one in "
                f"{targets.console(resource.cluster)}"
            )
        return named[0] if named else None
