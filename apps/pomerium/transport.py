"""Zero's v0 API on the wire: the ID token, one authenticated call, errors, paging.

``ZeroTransport`` is the plumbing under ``apps.pomerium.client.ZeroClient`` (which adds the
calls on policies, clusters, changesets and the activity log). Contract
(docs/zero-api.md):

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
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import requests

__all__ = [
    "MAX_PAGES",
    "PAGE_SIZE",
    "REDACTED",
    "TOKEN_RENEW_MARGIN",
    "ZeroError",
    "ZeroPermanentError",
    "ZeroTransientError",
    "ZeroTransport",
]

logger = logging.getLogger("apps.pomerium.client")

TOKEN_RENEW_MARGIN = 60.0  # seconds of validity left below which we renew
PAGE_SIZE = 100  # asked for; the server may send fewer (see ``_paged``)
MAX_PAGES = 1000  # a server that ignores offset must not keep us looping
BODY_EXCERPT = 200
REDACTED = "[REDACTED]"


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


class ZeroTransport:
    """Authenticated, counted, redacted calls to one organization of Zero's v0 API.

    Thread-safe: the ID token is guarded by a lock, so one exchange serves all
    threads. ``calls`` counts requests by (method, path template), e.g.
    ``calls[("POST", "/token")]``.
    """

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

    def authenticate(self) -> float:
        """Exchange the API token now (ignoring any cached ID token).

        Returns the new ID token's lifetime in seconds; raises ZeroError like any call.
        For connectivity checks: normal calls renew the token by themselves.
        """
        with self._token_lock:
            self._exchange_token()
            return self._id_token_expires_at - self.clock()
