"""The HTTP client of the portal's JSON API, with the session stored for its origin."""

from __future__ import annotations

from typing import Any

import requests

from . import __version__
from .core import (
    CONFLICT,
    FAILED,
    LOGIN_HINT,
    NOT_SIGNED_IN,
    REFUSED,
    USAGE,
    CliError,
    fail,
)
from .sessions import Session, load_session, normalise_url, origin

TIMEOUT_SECONDS = 30
# Lists are paged by the portal (docs/api.md, "Lists and paging"): ask for its largest page
# and follow X-Next-Cursor, up to this many pages.
PAGE_LIMIT = 500
MAX_PAGES = 100


def connect(url: str | None) -> Api:
    """The API of the portal at ``url`` (``--url``/``JIT_URL``), else of the last login.

    Only a session stored for that portal's origin is used; there is none to borrow.
    """
    if url is None:
        session = load_session()
        if session is None:
            fail(LOGIN_HINT, NOT_SIGNED_IN)
        return Api(session)
    wanted = normalise_url(url)
    session = load_session(wanted)
    if session is None:
        fail(f"Not signed in to {origin(wanted)}: run `jit login {wanted}`.", NOT_SIGNED_IN)
    return Api(session)


class Api:
    """The portal's ``/api/v1`` with a stored Pomerium session; errors become ``CliError``.

    The session's token goes to the session's own origin only (``sessions``): no redirect
    is followed, and the base URL is the session's.
    """

    def __init__(self, session: Session) -> None:
        if session.expired():
            fail(LOGIN_HINT, NOT_SIGNED_IN)
        self.session = session
        self.base = normalise_url(session.url) + "/api/v1"
        self.http = requests.Session()
        self.http.headers.update(
            {
                "Authorization": f"Pomerium {session.token}",
                "Accept": "application/json",
                "User-Agent": f"jit/{__version__}",
            }
        )

    def get(self, path: str, **params: Any) -> Any:
        return self._call("GET", path, params=params or None)

    def get_all(self, path: str, **params: Any) -> list[Any]:
        """Every row of a paged list, following ``X-Next-Cursor`` to its last page."""
        rows: list[Any] = []
        query = {**params, "limit": PAGE_LIMIT}
        for _ in range(MAX_PAGES):
            response = self._send("GET", path, params=query)
            page = self._answer(response)
            if not isinstance(page, list):
                fail(f"The portal answered {path} with something other than a list.", FAILED)
            rows.extend(page)
            cursor = response.headers.get("X-Next-Cursor")
            if not cursor:
                return rows
            query["cursor"] = cursor
        fail(f"{path} has more than {MAX_PAGES * PAGE_LIMIT} rows; narrow it down.", FAILED)

    def post(self, path: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
        return self._call("POST", path, json=body, headers=headers)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._answer(self._send(method, path, **kwargs))

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        try:
            return self.http.request(
                method, self.base + path, timeout=TIMEOUT_SECONDS, allow_redirects=False, **kwargs
            )
        except requests.RequestException as exc:
            fail(f"Cannot reach the portal at {self.base}: {type(exc).__name__}.", FAILED)

    @staticmethod
    def _answer(response: requests.Response) -> Any:
        status = response.status_code
        if status in (301, 302, 303, 307, 308) or status == 401:
            # Pomerium sends an unauthenticated request to sign in (or answers 401).
            fail(LOGIN_HINT, NOT_SIGNED_IN)
        try:
            body = response.json()
        except ValueError:
            body = None
        error = body.get("error") if isinstance(body, dict) else None
        if status < 400:
            if body is None:
                fail(f"The portal answered {status} without JSON; is the URL right?", FAILED)
            return body
        if not isinstance(error, dict):
            fail(f"The portal answered {status}.", FAILED)
        said = str(error.get("message") or f"HTTP {status}")
        found = error.get("fields")
        fields = {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}
        message = said
        if fields:
            message += " (" + "; ".join(f"{k}: {v}" for k, v in fields.items()) + ")"
        if error.get("code") == "not_signed_in":
            fail(LOGIN_HINT, NOT_SIGNED_IN)
        code = {400: USAGE, 403: REFUSED, 404: REFUSED, 409: CONFLICT, 422: CONFLICT}
        raise CliError(message, code.get(status, FAILED), fields, said)
