"""The port the sync engine talks to: "where a resource's policy lives".

``PolicyStore`` is what the sync, the watch and the commands use of a target; two adapters
implement it, one module each: ``apps.pomerium.client.ZeroClient`` (Zero's v0 REST API) and
``apps.pomerium.configservice.ConfigServiceClient`` (Pomerium's ConfigService: Core, and
Zero or Enterprise as flavour ``api``). The sync never asks which one it holds: it reads
``capabilities`` (``apps.access.targets``) and calls the optional parts only when they
say so (changesets and the activity log exist only where ``CHANGESETS`` and
``ACTIVITY_LOG`` are).

``store_for(target_name)`` is the one place an adapter is chosen, from the target's
flavour; one store per target and process, cached like ``client.get_client``.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import requests
from django.conf import settings

from apps.access import targets
from apps.pomerium.client import ZeroClient, ZeroPermanentError, get_client
from apps.pomerium.configservice import LOCATION_PREFIX, ConfigServiceClient

__all__ = ["PolicyStore", "reset_store_cache", "store_at", "store_for", "with_log"]


@runtime_checkable
class PolicyStore(Protocol):
    """Read, list, create, replace and delete a target's policies; its routes.

    Every method raises ``apps.pomerium.client.ZeroError`` (``ZeroTransientError`` when a
    retry may help, ``ZeroPermanentError`` otherwise, ``status`` 404 for a missing
    policy). Policies are dicts as ``apps.pomerium.desired.managed_state`` reads them: ``id``,
    ``name``, ``description``, ``explanation``, ``remediation``, ``enforced``, ``ppl``
    (a structure), and where the target says so ``namespaceId``, ``modifiedAt``,
    ``routes``.
    """

    cluster_id: str  # where the policies live (PolicySync.cluster_id remembers it)
    capabilities: frozenset[str]
    calls: Counter[tuple[str, str]]
    session: requests.Session

    def list_policies(self) -> list[dict[str, Any]]: ...

    def find_policies_by_name(self, name: str) -> list[dict[str, Any]]: ...

    def get_policy(self, policy_id: str) -> dict[str, Any]: ...

    def create_policy(self, props: Mapping[str, Any]) -> dict[str, Any]: ...

    def replace_policy(self, policy_id: str, props: Mapping[str, Any]) -> dict[str, Any]: ...

    def delete_policy(self, policy_id: str) -> None: ...

    def list_routes(self) -> list[dict[str, Any]]: ...

    def attach_policy(self, route_id: str, policy_id: str) -> bool: ...

    def for_cluster(self, cluster_id: str) -> PolicyStore: ...


_lock = threading.Lock()
_stores: dict[tuple[Any, ...], ConfigServiceClient] = {}


def _key(target: targets.Target) -> tuple[Any, ...]:
    import os

    return (
        os.getpid(),  # a forked worker must not reuse its parent's connections
        target,
        settings.POMERIUM_SHARED_SECRET,
        settings.POMERIUM_API_TOKEN,
        float(settings.POMERIUM_TIMEOUT_SECONDS),
    )


def _configservice(target: targets.Target) -> ConfigServiceClient:
    key = _key(target)
    with _lock:
        client = _stores.get(key)
        if client is None:
            core = target.flavour == targets.CORE
            client = ConfigServiceClient(
                target.address,
                target=target.name,
                shared_secret=settings.POMERIUM_SHARED_SECRET if core else "",
                api_token="" if core else settings.POMERIUM_API_TOKEN,
                timeout=float(settings.POMERIUM_TIMEOUT_SECONDS),
            )
            client.capabilities = targets.capabilities(target.name)
            _stores[key] = client
        return client


def store_for(name: str, *, base: ZeroClient | None = None) -> PolicyStore:
    """The store of the target named ``name``; KeyError when it is not configured.

    ``base`` is a caller's Zero client, taken to be the default Zero cluster's: a Zero
    target is then reached like it, for its own cluster.
    A ConfigService target gets the process-wide client of that target.
    """
    target = targets.get(name)
    if target.flavour == targets.ZERO:
        if base is None:
            return get_client(target.address)
        return base if name == settings.ZERO_DEFAULT_CLUSTER else base.for_cluster(target.address)
    return _configservice(target)


def store_at(location: str, current: PolicyStore) -> tuple[PolicyStore, bool]:
    """The store holding policies at ``location`` (a ``PolicySync.cluster_id``), and whether
    it is a fresh one the caller must close. ``current`` answers for its own location; a
    ConfigService location (``target:<name>``) is that target's store; anything else is a
    Zero cluster, reached like ``current`` when that is a Zero client. Raises
    ``ZeroPermanentError`` for a ConfigService target that is no longer configured."""
    if location == current.cluster_id:
        return current, False
    if location.startswith(LOCATION_PREFIX):
        name = location.removeprefix(LOCATION_PREFIX)
        target = targets.configured().get(name)
        if target is None or target.flavour == targets.ZERO:
            raise ZeroPermanentError(f"target {name!r} is no longer a ConfigService target")
        return _configservice(target), False
    if isinstance(current, ZeroClient):
        return current.for_cluster(location), True
    return get_client(location), False


def with_log(store: PolicyStore) -> ZeroClient:
    """The store's changesets and activity log, for a caller that has read
    ``CHANGESETS``/``ACTIVITY_LOG`` in its capabilities (only Zero's v0 API has them)."""
    if not isinstance(store, ZeroClient):
        raise TypeError(f"{store!r} has no changesets or activity log")
    return store


def reset_store_cache() -> None:
    """Forget the process-wide ConfigService clients (tests)."""
    with _lock:
        _stores.clear()
