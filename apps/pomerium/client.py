"""The Pomerium Zero management API client: the only code that talks to Zero.

Contract (docs/zero-api.md; the JSON Schemas in ``apps/pomerium/contract`` are the written
form, and the tests validate every body this client sends against them). The token, the
authenticated call, errors and paging are ``apps.pomerium.transport``'s (its docstring says
how failures and tokens are handled); this module adds the calls on policies, routes,
clusters, changesets and the activity log, and one client per process and cluster
(``get_client``).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Mapping
from typing import Any

from apps import ppl as ppl_lib
from apps.access import clusters, targets
from apps.pomerium import contract
from apps.pomerium.transport import (
    MAX_PAGES,
    PAGE_SIZE,
    TOKEN_RENEW_MARGIN,
    ZeroError,
    ZeroPermanentError,
    ZeroTransientError,
    ZeroTransport,
    _parse_retry_after,
)

__all__ = [
    "POLICY_PROPERTIES",
    "TOKEN_RENEW_MARGIN",
    "ZeroClient",
    "ZeroError",
    "ZeroPermanentError",
    "ZeroTransientError",
    "_parse_retry_after",
    "default_cluster_id",
    "get_client",
    "reset_client_cache",
]

logger = logging.getLogger("apps.pomerium.client")

SETTINGS_MAX_AGE = 30.0  # seconds a cluster-settings answer is reused
# Every key a create or replace must carry, read from the written contract so the client
# and the simulator (which reads the same schema) cannot drift apart.
POLICY_PROPERTIES: tuple[str, ...] = tuple(contract.schema("PolicyProperties")["required"])
_PROPERTY_DEFAULTS: dict[str, Any] = {
    "description": "",
    "explanation": "",
    "remediation": "",
    "enforced": False,
}


def _decode_ppl(value: object) -> object:
    """``ppl`` as read: the contract says a rule object or an array of them.

    A server that answers with text anyway (not Zero's contract) gets it parsed when it is
    JSON; anything else is kept verbatim, so it never compares equal to what we want and
    the sync rewrites it.
    """
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _decode_policy(policy: object) -> dict[str, Any]:
    if not isinstance(policy, dict):
        raise ZeroPermanentError(f"expected a policy object, got {type(policy).__name__}")
    if "ppl" in policy:
        policy = {**policy, "ppl": _decode_ppl(policy["ppl"])}
    return policy


class ZeroClient(ZeroTransport):
    """A Zero API client for one organization and cluster (see ``ZeroTransport`` for
    the token, the calls and ``calls``)."""

    # Zero's v0 API: date windows, recurring windows, changesets, an activity log.
    capabilities: frozenset[str] = targets.ZERO_V0
    # Caches of this cluster's namespace and settings (set on first read).
    _namespace_id: str | None = None
    namespace_source: str = ""
    _settings_cache: tuple[float, dict[str, Any]] | None = None

    def __repr__(self) -> str:
        # Deliberately without the token.
        return f"<ZeroClient {self.base_url} org={self.organization_id} cluster={self.cluster_id}>"

    @classmethod
    def from_settings(cls, cluster_id: str | None = None) -> ZeroClient:
        """Build a client from Django settings (ZERO_API_URL, API_USER_TOKEN, ...) for
        ``cluster_id``, by default the default cluster (``default_cluster_id()``)."""
        from django.conf import settings

        return cls(
            base_url=settings.ZERO_API_URL,
            api_token=settings.API_USER_TOKEN,
            organization_id=settings.ORGANIZATION_ID,
            cluster_id=default_cluster_id() if cluster_id is None else cluster_id,
            auth_scheme=getattr(settings, "ZERO_AUTH_SCHEME", "Bearer"),
            timeout=float(getattr(settings, "ZERO_TIMEOUT_SECONDS", 10.0)),
        )

    def for_cluster(self, cluster_id: str) -> ZeroClient:
        """A client like this one (URL, token, organization, scheme, timeout) for another
        cluster of the organization; this client itself when it is that cluster's. One API
        user token serves every cluster its user may manage; each client keeps its own ID
        token, namespace and settings cache."""
        if cluster_id == self.cluster_id:
            return self
        return type(self)(
            self.base_url,
            self._api_token,
            self.organization_id,
            cluster_id,
            auth_scheme=self.auth_scheme,
            timeout=self.timeout,
            clock=self.clock,
        )

    def _policy_properties(self, props: Mapping[str, Any]) -> dict[str, Any]:
        """The PolicyProperties body: every required key, ``ppl`` as a structure.

        Zero's schema types ``ppl`` as a rule object or an array of rule objects; text is
        refused (a ``TypeError`` here, before anything is sent). Missing text keys get
        defaults, so to keep console-set text pass the whole current policy (extra keys
        such as ``id`` or ``routes`` are dropped).
        """
        missing = [key for key in ("name", "ppl") if key not in props]
        if missing:
            raise ValueError(f"policy properties need {', '.join(missing)}")
        raw = props["ppl"]
        if not isinstance(raw, list | dict):
            raise TypeError(f"ppl must be a rule object or a list of rules, not {type(raw)}")
        body = {key: props.get(key, default) for key, default in _PROPERTY_DEFAULTS.items()}
        body["name"] = props["name"]
        body["namespaceId"] = props.get("namespaceId") or self.namespace_id()
        body["ppl"] = json.loads(ppl_lib.dumps(raw))  # a deep, JSON-clean copy
        return {key: body[key] for key in POLICY_PROPERTIES}

    # ------------------------------------------------------------------ #
    # Operations
    # ------------------------------------------------------------------ #

    def namespace_id(self) -> str:
        """The namespace holding this cluster's policies (cached after the first call).

        Read with the narrowest call, ``GET /clusters/{CLUSTER_ID}``. A token that may not
        read the cluster (403) or a cluster the API does not show (404) falls back to the
        cluster id itself, which is what Pomerium's jit-example passes as ``namespaceId``;
        ``namespace_source`` then says so (``check_connectivity`` prints it).
        """
        if self._namespace_id is not None:
            return self._namespace_id
        try:
            cluster = self.get_cluster()
        except ZeroPermanentError as exc:
            if exc.status not in (403, 404):
                raise
            self._namespace_id = self.cluster_id
            self.namespace_source = (
                f"fallback: reading cluster {self.cluster_id} was refused ({exc.status}), "
                "so the cluster id is used as the namespace id"
            )
            logger.warning("Zero: %s", self.namespace_source)
            return self._namespace_id
        namespace = cluster.get("namespaceId")
        if not isinstance(namespace, str) or not namespace:
            raise ZeroPermanentError(
                f"Zero API cluster {self.cluster_id} answered without a namespaceId"
            )
        self._namespace_id = namespace
        self.namespace_source = f"read from cluster {self.cluster_id}"
        return namespace

    def get_cluster(self) -> dict[str, Any]:
        """This cluster (``GET /clusters/{CLUSTER_ID}``)."""
        return self._get_object("/clusters/{cluster}", path_params={"cluster": self.cluster_id})

    def list_policies(self) -> list[dict[str, Any]]:
        """Every policy of the namespace, however the server pages."""
        pages = self._paged("/policies", {"namespaceId": self.namespace_id(), "orderBy": "name"})
        return [_decode_policy(p) for p in pages]

    def find_policies_by_name(self, name: str) -> list[dict[str, Any]]:
        """Every policy of the namespace called ``name`` (Zero may allow duplicates)."""
        return [p for p in self.list_policies() if p.get("name") == name]

    def get_policy(self, policy_id: str) -> dict[str, Any]:
        """One policy; ZeroPermanentError(status=404) if it does not exist."""
        return _decode_policy(self._get_object("/policies/{id}", path_params={"id": policy_id}))

    def create_policy(self, props: Mapping[str, Any]) -> dict[str, Any]:
        """Create a policy from PolicyProperties (expects 201, accepts 200)."""
        body = self._policy_properties(props)
        return _decode_policy(self._call("POST", "/policies", json_body=body))

    def replace_policy(self, policy_id: str, props: Mapping[str, Any]) -> dict[str, Any]:
        """PUT every PolicyProperties key of policy ``policy_id``."""
        body = self._policy_properties(props)
        return _decode_policy(
            self._call("PUT", "/policies/{id}", path_params={"id": policy_id}, json_body=body)
        )

    def delete_policy(self, policy_id: str) -> None:
        """Delete a policy (204 or 200)."""
        self._call("DELETE", "/policies/{id}", path_params={"id": policy_id}, decode=False)

    def list_routes(self) -> list[dict[str, Any]]:
        """The namespace's routes (to show which routes a policy protects)."""
        return self._paged("/routes", {"namespaceId": self.namespace_id()})

    def attach_policy(self, route_id: str, policy_id: str) -> bool:
        """Not done through Zero's v0 API: attach the policy to its routes in the Zero
        console (docs/sync.md "Routes"). Raises ZeroPermanentError saying so."""
        raise ZeroPermanentError(
            f"route {route_id}: attach policy {policy_id} to it in the Zero console; the "
            "portal attaches policies to routes only through ConfigService targets"
        )

    def cluster_settings(self) -> dict[str, Any]:
        """The cluster's settings, e.g. ``autoApplyChangesets``."""
        settings = self._get_object(
            "/clusters/{cluster}/settings", path_params={"cluster": self.cluster_id}
        )
        with self._stats_lock:
            self._settings_cache = (self.clock(), settings)
        return settings

    def auto_apply_changesets(self, max_age: float = SETTINGS_MAX_AGE) -> bool:
        """Does the cluster apply API writes at once? Read at most every ``max_age`` s.

        Only ``autoApplyChangesets: true`` counts as yes: a missing or non-boolean value is
        "no", so the portal then follows its write to a changeset instead of assuming.
        """
        with self._stats_lock:
            cached = self._settings_cache
        if cached is None or self.clock() - cached[0] > max_age:
            settings = self.cluster_settings()
        else:
            settings = cached[1]
        return settings.get("autoApplyChangesets") is True

    def list_changesets(self, status: str | None = None) -> list[dict[str, Any]]:
        """This cluster's changesets, newest change first (all pages)."""
        params: dict[str, Any] = {"clusterId": self.cluster_id, "orderBy": "-updatedAt"}
        if status:
            params["status"] = status
        return [c for c in self._paged("/changesets", params) if isinstance(c, dict)]

    def find_changeset(self, changeset_id: str) -> dict[str, Any] | None:
        """One changeset by id, or None. The API has no call for one changeset, so this
        pages the cluster's list (newest first: ours is near the top) until it is found."""
        params = {"clusterId": self.cluster_id, "orderBy": "-updatedAt"}
        offset, largest = 0, 0
        for _ in range(MAX_PAGES):
            page = self._get_list(
                "/changesets", params={**params, "limit": PAGE_SIZE, "offset": offset}
            )
            for changeset in page:
                if isinstance(changeset, dict) and str(changeset.get("id")) == changeset_id:
                    return changeset
            if not page or (largest and len(page) < largest):
                return None
            largest = max(largest, len(page))
            offset += len(page)
        return None

    def apply_changeset(self, changeset_id: str) -> dict[str, Any]:
        """Apply a changeset; returns it with its status after the call (``applying``,
        ``applied`` or a failure: not necessarily final)."""
        data = self._call("POST", "/changesets/{id}/apply", path_params={"id": changeset_id})
        if not isinstance(data, dict):
            raise ZeroPermanentError(
                f"Zero API POST /changesets/{changeset_id}/apply answered without a changeset"
            )
        return data

    def activity_logs(self, *, limit: int | None = None, **filters: str) -> list[dict[str, Any]]:
        """Activity entries matching ``filters`` (entityType, entityId, changesetId, ...),
        newest first. With ``limit``, only the first page of that size is read (the
        server may send fewer); without, every page."""
        params: dict[str, Any] = {**filters, "orderBy": "-updatedAt"}
        if limit is not None:
            entries = self._get_list("/activityLogs", params={**params, "limit": limit})
        else:
            entries = self._paged("/activityLogs", params)
        return [e for e in entries if isinstance(e, dict)]


# --------------------------------------------------------------------------- #
# One client per process and cluster
# --------------------------------------------------------------------------- #

_cache_lock = threading.Lock()
_cached: dict[tuple[Any, ...], ZeroClient] = {}


def default_cluster_id() -> str:
    """The Zero cluster id of the default cluster (``ZERO_DEFAULT_CLUSTER``; normally
    ``CLUSTER_ID``). When the default target is not a Zero cluster (a Core), ``CLUSTER_ID``
    (normally empty)."""
    from django.conf import settings

    return clusters.zero_clusters().get(settings.ZERO_DEFAULT_CLUSTER, settings.CLUSTER_ID)


def _settings_key() -> tuple[Any, ...]:
    from django.conf import settings

    return (
        # A forked worker must not reuse its parent's pooled connections.
        os.getpid(),
        settings.ZERO_API_URL,
        settings.API_USER_TOKEN,
        settings.ORGANIZATION_ID,
        settings.CLUSTER_ID,
        tuple(sorted(settings.ZERO_CLUSTERS.items())),
        settings.ZERO_DEFAULT_CLUSTER,
        getattr(settings, "ZERO_AUTH_SCHEME", "Bearer"),
        float(getattr(settings, "ZERO_TIMEOUT_SECONDS", 10.0)),
    )


def get_client(cluster_id: str | None = None) -> ZeroClient:
    """The process-wide client of ``cluster_id`` (default: the default cluster's).

    One per cluster, shared so a worker's tasks share its ID token, namespace and settings
    caches; all of them are rebuilt when the settings change (e.g. under
    ``override_settings`` in tests) and in a forked child.
    """
    settings_key = _settings_key()
    cluster_id = default_cluster_id() if cluster_id is None else cluster_id
    key = (*settings_key, cluster_id)
    with _cache_lock:
        client = _cached.get(key)
        if client is None:
            # Clients made for other settings are stale: forget them.
            for stale in [k for k in _cached if k[: len(settings_key)] != settings_key]:
                del _cached[stale]
            client = _cached[key] = ZeroClient.from_settings(cluster_id)
        return client


def reset_client_cache() -> None:
    """Forget the process-wide clients (tests, or after a fork)."""
    with _cache_lock:
        _cached.clear()
