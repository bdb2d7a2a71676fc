"""The Pomerium Zero management API client: the only code that talks to Zero.

Contract (docs/zero-api.md; the JSON Schemas in ``apps/zero/contract`` are the written
form, and the tests validate every body this client sends against them):

* The API user token is exchanged at ``POST /token`` for an ID token, cached
  and renewed when fewer than ``TOKEN_RENEW_MARGIN`` seconds remain. The cache
  is per client; ``get_client()`` keeps one client per process so a worker's
  tasks share it.
* Every failure raises a ``ZeroError``: ``ZeroTransientError`` for network
  errors, timeouts, 429 and 5xx (retry later, honouring ``retry_after``),
  ``ZeroPermanentError`` for everything else. A 401 drops the ID token and the
  call is retried once with a new one. The client never retries anything else
  itself: retry policy (backoff, attempts) belongs to the caller, typically a
  Celery task.
* Neither token ever appears in an exception message or a log line.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import requests

from apps import ppl as ppl_lib
from apps.access import clusters, targets
from apps.zero import contract

__all__ = [
    "POLICY_PROPERTIES",
    "TOKEN_RENEW_MARGIN",
    "ZeroClient",
    "ZeroError",
    "ZeroPermanentError",
    "ZeroTransientError",
    "default_cluster_id",
    "get_client",
    "reset_client_cache",
]

logger = logging.getLogger("apps.zero.client")

TOKEN_RENEW_MARGIN = 60.0  # seconds of validity left below which we renew
PAGE_SIZE = 100  # asked for; the server may send fewer (see ``_paged``)
MAX_PAGES = 1000  # a server that ignores offset must not keep us looping
SETTINGS_MAX_AGE = 30.0  # seconds a cluster-settings answer is reused
BODY_EXCERPT = 200
REDACTED = "[REDACTED]"
# Every key a create or replace must carry, read from the written contract so the client
# and the simulator (which reads the same schema) cannot drift apart.
POLICY_PROPERTIES: tuple[str, ...] = tuple(contract.schema("PolicyProperties")["required"])
_PROPERTY_DEFAULTS: dict[str, Any] = {
    "description": "",
    "explanation": "",
    "remediation": "",
    "enforced": False,
}


class ZeroError(Exception):
    """A Zero API call failed.

    ``status`` is the HTTP status (``None`` for network errors), ``transient``
    says whether retrying later may succeed, ``retry_after`` is the server's
    requested delay in seconds when it gave one.
    """

    transient: bool = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class ZeroTransientError(ZeroError):
    """Network error, timeout, 429 or 5xx: the same call may succeed later."""

    transient = True


class ZeroPermanentError(ZeroError):
    """4xx (other than 429), a repeated 401, or a malformed answer: do not retry as is."""

    transient = False


def _parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


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


class ZeroClient:
    """A Zero API client for one organization and cluster.

    Thread-safe: the ID token is guarded by a lock, so one exchange serves all
    threads. ``calls`` counts requests by (method, path template), e.g.
    ``calls[("POST", "/token")]``.
    """

    # Zero's v0 API: date windows, recurring windows, changesets, an activity log.
    capabilities: frozenset[str] = targets.ZERO_V0

    def __init__(
        self,
        base_url: str,
        api_token: str,
        organization_id: str,
        cluster_id: str,
        auth_scheme: str = "Bearer",
        timeout: float = 10.0,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_token = api_token
        self.organization_id = organization_id
        self.cluster_id = cluster_id
        self.auth_scheme = auth_scheme
        self.timeout = timeout
        self.session = session or requests.Session()
        self.clock = clock
        self.calls: Counter[tuple[str, str]] = Counter()
        self._token_lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self._id_token: str | None = None
        self._id_token_expires_at = 0.0
        # Recent ID tokens, redacted from messages along with the API token.
        self._recent_id_tokens: deque[str] = deque(maxlen=3)
        self._namespace_id: str | None = None
        self.namespace_source = ""
        self._settings_cache: tuple[float, dict[str, Any]] | None = None

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

    # ------------------------------------------------------------------ #
    # Plumbing
    # ------------------------------------------------------------------ #

    def _redact(self, text: str) -> str:
        secrets = [s for s in (self._api_token, *self._recent_id_tokens) if s]
        for secret in sorted(secrets, key=len, reverse=True):
            text = text.replace(secret, REDACTED)
            escaped = json.dumps(secret)[1:-1]
            if escaped != secret:
                text = text.replace(escaped, REDACTED)
        return text

    def _count(self, method: str, template: str) -> None:
        with self._stats_lock:
            self.calls[(method, template)] += 1

    def _org_path(self, template: str, **params: str) -> tuple[str, str]:
        """(concrete path, template) for an org-scoped endpoint."""
        template = "/organizations/{org}" + template
        values = {"org": self.organization_id, **params}
        path = template.format(**{k: quote(str(v), safe="") for k, v in values.items()})
        return path, template

    def _send(
        self,
        method: str,
        path: str,
        template: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: object = None,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """One HTTP request; network failures become ZeroTransientError."""
        self._count(method, template)
        started = time.monotonic()
        try:
            response = self.session.request(
                method,
                self.base_url + path,
                params=params,
                json=json_body,
                headers=dict(headers or {}),
                timeout=self.timeout,
            )
        except requests.Timeout as exc:
            raise ZeroTransientError(
                self._redact(f"Zero API {method} {path} timed out after {self.timeout}s")
            ) from exc
        except requests.RequestException as exc:
            raise ZeroTransientError(
                self._redact(f"Zero API {method} {path} failed: {type(exc).__name__}: {exc}")
            ) from exc
        logger.debug(
            "Zero API %s %s -> %s in %.0f ms",
            method,
            path,
            response.status_code,
            (time.monotonic() - started) * 1000,
        )
        return response

    def _error_for(self, method: str, path: str, response: requests.Response) -> ZeroError:
        status = response.status_code
        body = self._redact(response.text or "")
        if len(body) > BODY_EXCERPT:
            body = body[:BODY_EXCERPT] + "..."
        message = f"Zero API {method} {path} returned {status}"
        if body:
            message += f": {body}"
        retry_after = _parse_retry_after(response.headers.get("Retry-After"))
        if status == 429 or status >= 500:
            return ZeroTransientError(message, status=status, retry_after=retry_after)
        return ZeroPermanentError(message, status=status, retry_after=retry_after)

    def _exchange_token(self) -> None:
        """POST /token; caller holds ``_token_lock``."""
        if not self._api_token:
            raise ZeroPermanentError("no Zero API user token is configured (API_USER_TOKEN)")
        response = self._send(
            "POST", "/token", "/token", json_body={"refreshToken": self._api_token}
        )
        if not 200 <= response.status_code < 300:
            raise self._error_for("POST", "/token", response)
        try:
            data = response.json()
            id_token = data["idToken"]
            lifetime = float(data["expiresInSeconds"])  # a string per the contract; ints too
        except (ValueError, KeyError, TypeError):
            # "from None": a chained decode error would carry the body, i.e. the token.
            raise ZeroPermanentError(
                "Zero API POST /token answered without a usable idToken/expiresInSeconds",
                status=response.status_code,
            ) from None
        if not isinstance(id_token, str) or not id_token:
            raise ZeroPermanentError(
                "Zero API POST /token answered with an empty idToken", status=response.status_code
            )
        self._recent_id_tokens.append(id_token)
        self._id_token = id_token
        self._id_token_expires_at = self.clock() + lifetime
        logger.info("Obtained a Zero ID token valid for %.0f s", lifetime)

    def _current_token(self) -> str:
        with self._token_lock:
            remaining = self._id_token_expires_at - self.clock()
            if self._id_token is None or remaining < TOKEN_RENEW_MARGIN:
                self._exchange_token()
            assert self._id_token is not None
            return self._id_token

    def _drop_token(self, stale: str) -> None:
        with self._token_lock:
            # Another thread may already have replaced it; keep the fresh one.
            if self._id_token == stale:
                self._id_token = None

    def _call(
        self,
        method: str,
        template: str,
        *,
        path_params: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        json_body: object = None,
        decode: bool = True,
    ) -> Any:
        """An authenticated org-scoped call; returns the decoded JSON (or None).

        Any 2xx is success. A 401 renews the ID token and repeats the call
        once; a second 401 is a ZeroPermanentError.
        """
        path, full_template = self._org_path(template, **(path_params or {}))
        response: requests.Response | None = None
        for attempt in (1, 2):
            token = self._current_token()
            response = self._send(
                method,
                path,
                full_template,
                params=params,
                json_body=json_body,
                headers={"Authorization": f"{self.auth_scheme} {token}"},
            )
            if response.status_code == 401 and attempt == 1:
                logger.info("Zero API %s %s returned 401; renewing the ID token", method, path)
                self._drop_token(token)
                continue
            break
        assert response is not None
        if not 200 <= response.status_code < 300:
            raise self._error_for(method, path, response)
        if not decode or response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise ZeroPermanentError(
                f"Zero API {method} {path} returned {response.status_code} with a non-JSON body",
                status=response.status_code,
            ) from None

    def _get_list(self, template: str, **kwargs: Any) -> list[Any]:
        data = self._call("GET", template, **kwargs)
        if not isinstance(data, list):
            raise ZeroPermanentError(
                f"Zero API GET {template} returned {type(data).__name__}, expected a list"
            )
        return data

    def _get_object(self, template: str, **kwargs: Any) -> dict[str, Any]:
        data = self._call("GET", template, **kwargs)
        if not isinstance(data, dict):
            raise ZeroPermanentError(
                f"Zero API GET {template} returned {type(data).__name__}, expected an object"
            )
        return data

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

    def _paged(self, template: str, params: Mapping[str, Any]) -> list[Any]:
        """Every item of a list endpoint, following ``limit``/``offset``.

        Zero answers bare arrays with no total and no cursor, and does not promise to honour
        the ``limit`` asked for. So the offset advances by what actually came back, and the
        list ends at an empty page, or at a page shorter than the largest one seen before
        it (a server capping pages at 10 sends 10, 10, ..., then fewer). Items already seen
        (by ``id``) are dropped, and a page of nothing new ends the loop, so a server that
        ignores ``offset`` cannot keep us paging.
        """
        items: list[Any] = []
        seen: set[str] = set()
        offset = 0
        largest = 0
        for _ in range(MAX_PAGES):
            page = self._get_list(template, params={**params, "limit": PAGE_SIZE, "offset": offset})
            ids = [str(i["id"]) for i in page if isinstance(i, dict) and i.get("id") is not None]
            fresh = [
                i
                for i in page
                if not (isinstance(i, dict) and i.get("id") is not None and str(i["id"]) in seen)
            ]
            seen.update(ids)
            items.extend(fresh)
            if not page or not fresh or (largest and len(page) < largest):
                break
            largest = max(largest, len(page))
            offset += len(page)
        return items

    # ------------------------------------------------------------------ #
    # Operations
    # ------------------------------------------------------------------ #

    def authenticate(self) -> float:
        """Exchange the API token now (ignoring any cached ID token).

        Returns the new ID token's lifetime in seconds; raises ZeroError like any call.
        For connectivity checks: normal calls renew the token by themselves.
        """
        with self._token_lock:
            self._exchange_token()
            return self._id_token_expires_at - self.clock()

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
