"""A raw HTTP driver for Zero API tests that checks every answer against the contract.

Not the portal's client: it sends exactly what a test gives it (so tests can
send what a client never would) and validates each successful answer against
the schema of its endpoint, counting which endpoints it has checked. Works
against the simulator or any server that speaks the contract::

    probe = ContractProbe(sim.url, sim.api_token, sim.organization_id)
    answer = probe.call("POST", "/organizations/{org}/policies", json=body)
    assert answer.status_code == 201
    policies, pages = probe.list_all("/organizations/{org}/policies", namespaceId="ns")
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import requests

from apps.zero import contract
from devtools.zerosim.handler import API_ENDPOINTS

__all__ = ["ContractProbe"]


class ContractProbe:
    """``call`` sends one request; 2xx answers must validate (ContractError otherwise)."""

    def __init__(
        self, base_url: str, api_token: str, organization_id: str, *, timeout: float = 5.0
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_token = api_token
        self.organization_id = organization_id
        self.timeout = timeout
        self.session = requests.Session()
        self.checked: Counter[tuple[str, str]] = Counter()  # (method, template) validated
        self._id_token: str | None = None

    def token(self, *, fresh: bool = False) -> str:
        if self._id_token is None or fresh:
            answer = self.call("POST", "/token", json={"refreshToken": self.api_token}, auth=False)
            answer.raise_for_status()
            self._id_token = answer.json()["idToken"]
        return self._id_token

    def call(
        self,
        method: str,
        path: str,
        *,
        auth: bool = True,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """Send ``method path`` (``{org}`` filled in); validate a 2xx answer's body."""
        path = path.replace("{org}", self.organization_id)
        sent = dict(headers or {})
        if auth and "Authorization" not in sent:
            sent["Authorization"] = f"Bearer {self.token()}"
        answer = self.session.request(
            method, self.base_url + path, headers=sent, timeout=self.timeout, **kwargs
        )
        if 200 <= answer.status_code < 300:
            self._check(method, path, answer)
        return answer

    def _check(self, method: str, path: str, answer: requests.Response) -> None:
        route = path.split("?", 1)[0]
        for endpoint in API_ENDPOINTS:
            if endpoint.method == method and endpoint.pattern.match(route):
                if endpoint.answer is None:
                    if answer.content:
                        raise contract.ContractError(endpoint.template, ["expected no body"])
                else:
                    contract.validate(endpoint.answer, answer.json())
                self.checked[(method, endpoint.template)] += 1
                return

    def list_all(self, path: str, **params: Any) -> tuple[list[dict[str, Any]], int]:
        """Page with ``limit``/``offset`` until an empty page: (items, pages fetched).

        A server may cap pages below ``limit``, so a short page is not proof of the end.
        """
        limit = int(params.pop("limit", 100))
        items: list[dict[str, Any]] = []
        pages = 0
        while True:
            answer = self.call("GET", path, params={**params, "limit": limit, "offset": len(items)})
            answer.raise_for_status()
            page = answer.json()
            pages += 1
            if not page:
                return items, pages
            items.extend(page)

    def close(self) -> None:
        self.session.close()
