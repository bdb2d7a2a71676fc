"""Routes, the activity log and the "proxy" views of the Zero simulator.

Part of ``SimState`` (see ``state`` for the model); every method takes the
state lock.
"""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from devtools.zerosim import ppl as sim_ppl
from devtools.zerosim.model import StateBase
from devtools.zerosim.views import ACTIVITY_ORDER, ROUTE_ORDER, order, timestamp

__all__ = ["ReadsMixin"]


class ReadsMixin(StateBase):
    """Routes, activity log, effective policies, the evaluator and the state dump."""

    def add_route(
        self, name: str, from_url: str, policy_ids: Iterable[str], to: Iterable[str] = ()
    ) -> dict[str, Any]:
        with self.lock:
            now = timestamp(self._now())
            route = {
                "id": str(uuid.uuid4()),
                "name": name,
                "from": from_url,
                "to": list(to) or ["http://upstream.internal"],
                "namespaceId": self.namespace_id,
                "policyIds": list(policy_ids),
                "passIdentityHeaders": True,
                "createdAt": now,
                "updatedAt": now,
            }
            self.routes.append(route)
            return self._route_view(route)

    def _route_view(self, route: Mapping[str, Any]) -> dict[str, Any]:
        live = {r["id"]: r for r in self._live() if r["namespaceId"] == route["namespaceId"]}
        view = copy.deepcopy(dict(route))
        view["policies"] = [
            {"id": pid, "name": live[pid]["name"], "updatedAt": live[pid]["updatedAt"]}
            for pid in route["policyIds"]
            if pid in live
        ]
        enforced = [r for r in live.values() if r["enforced"]]
        view["enforcedPolicyIds"] = [r["id"] for r in enforced]
        view["enforcedPolicies"] = [
            {"id": r["id"], "name": r["name"], "updatedAt": r["updatedAt"]} for r in enforced
        ]
        for flag in (
            "allowSpdy",
            "allowWebsockets",
            "enableGoogleCloudServerlessAuthentication",
            "preserveHostHeader",
            "showErrorDetails",
            "tlsSkipVerify",
            "tlsUpstreamAllowRenegotiation",
        ):
            view.setdefault(flag, False)
        return view

    def list_routes(
        self,
        namespace_id: str,
        *,
        limit: int | None = None,
        offset: int = 0,
        order_by: str | None = None,
    ) -> list[dict[str, Any]]:
        with self.lock:
            self._advance()
            views = [self._route_view(r) for r in self.routes if r["namespaceId"] == namespace_id]
            views = order(views, order_by or "id", ROUTE_ORDER)
            return self._page(views, limit, offset)

    def activity_logs(
        self,
        *,
        filters: Mapping[str, str] | None = None,
        limit: int | None = None,
        offset: int = 0,
        order_by: str | None = None,
    ) -> list[dict[str, Any]]:
        """Log entries, newest first unless ``order_by``; all unless ``limit``.

        ``filters`` keys: entityType, entityId, namespaceId, changesetId, userId,
        activityType (exact equality).
        """
        getters: dict[str, Callable[[dict[str, Any]], object]] = {
            "entityType": lambda e: e["entity"]["type"],
            "entityId": lambda e: e["entity"]["id"],
            "namespaceId": lambda e: e["namespace"].get("id"),
            "changesetId": lambda e: e["applied"].get("changesetId"),
            "userId": lambda e: e["user"].get("id"),
            "activityType": lambda e: e["activityType"],
        }
        with self.lock:
            self._advance()
            shown_before = time.monotonic() - self.activity_delay
            entries = [e for e in self.activity[::-1] if self.logged_at[e["id"]] <= shown_before]
            for key, value in (filters or {}).items():
                entries = [e for e in entries if getters[key](e) == value]
            if order_by:
                entries = order(entries, order_by, ACTIVITY_ORDER)
            return copy.deepcopy(self._page(entries, limit, offset))

    # --------------------------------------------------------- the "proxy"

    def effective_policy(self, name_or_id: str) -> dict[str, Any] | None:
        """The applied version of a policy, with ``appliedAt``; None if none is live."""
        with self.lock:
            self._advance()
            found = self._find(name_or_id, effective=True)
            if not found:
                return None
            _, version = found[0]
            assert version.record is not None
            assert version.applied_at is not None
            return {**copy.deepcopy(version.record), "appliedAt": timestamp(version.applied_at)}

    def evaluate(self, name_or_id: str, request: sim_ppl.Request) -> bool:
        """Decide with the effective PPL.

        KeyError if no applied, live policy has that name or id; ValueError if
        several applied policies share the name (ask by id).
        """
        with self.lock:
            self._advance()
            found = self._find(name_or_id, effective=True)
            if not found:
                raise KeyError(name_or_id)
            if len(found) > 1:
                raise ValueError(f"{len(found)} applied policies are named {name_or_id!r}")
            record = found[0][1].record
            assert record is not None
            ppl = copy.deepcopy(record["ppl"])
        return sim_ppl.evaluate(ppl, request, validated=True)

    def history(self, name_or_id: str) -> list[dict[str, Any]]:
        """Every version of a policy: ppl, changeset, when written and when applied."""
        with self.lock:
            self._advance()
            found = self._find(name_or_id, effective=False) or self._find(
                name_or_id, effective=True
            )
            if not found:
                return []
            policy_id, _ = found[0]
            return [
                {
                    "ppl": copy.deepcopy(v.record["ppl"]) if v.record else None,
                    "deleted": v.record is None,
                    "changesetId": v.changeset_id,
                    "createdAt": v.created_at,
                    "appliedAt": v.applied_at,
                }
                for v in self.versions[policy_id]
            ]

    def dump(self) -> dict[str, Any]:
        """Everything, for ``GET /_sim/state`` and the demo."""
        with self.lock:
            self._advance()
            policies = []
            for policy_id in self.versions:
                latest = self._latest(policy_id)
                effective = self._effective_version(policy_id)
                eff_record = effective.record if effective else None
                if latest is None and eff_record is None:
                    continue
                policies.append(
                    {
                        "id": policy_id,
                        "name": (latest or eff_record or {}).get("name"),
                        "ppl": copy.deepcopy(latest["ppl"]) if latest else None,
                        "effectivePpl": copy.deepcopy(eff_record["ppl"]) if eff_record else None,
                        "appliedAt": timestamp(effective.applied_at)
                        if effective and effective.applied_at
                        else None,
                        "pending": self.versions[policy_id][-1].applied_at is None,
                    }
                )
            return {
                "organizationId": self.organization_id,
                "clusterId": self.cluster_id,
                "namespaceId": self.namespace_id,
                "autoApplyChangesets": self.auto_apply,
                "writeCount": self.write_count,
                "policies": policies,
                "routes": [self._route_view(r) for r in self.routes],
                "changesets": [self._changeset_view(c) for c in self.changesets.values()],
            }
