"""A raw HTTP driver for Zero API tests that checks every answer against the contract.

Not the portal's client: it sends exactly what a test gives it (so tests can
send what a client never would) and validates each successful answer against
the schema of its endpoint, counting which endpoints it has checked. Works
against the simulator or any server that speaks the contract::

    probe = ContractProbe(sim.url, sim.api_token, sim.organization_id)
    answer = probe.call("POST", "/organizations/{org}/policies", json=body)
    assert answer.status_code == 201
    policies, pages = probe.list_all("/organizations/{org}/policies", namespaceId="ns")

``would_allow`` asks the simulator's evaluator (``/_sim/evaluate``) whether the proxy
would let one request through an applied policy at a given moment, method, path and
client address::

    would_allow(sim.root_url, "jit-grafana", "alice@example.com", method="POST",
                path="/api/x", at=datetime(2027, 3, 30, 8, tzinfo=UTC))
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

import requests

from apps.pomerium import contract
from devtools.zerosim.handler import API_ENDPOINTS

__all__ = ["ContractProbe", "would_allow"]


def would_allow(
    root_url: str,
    policy: str,
    email: str,
    *,
    at: datetime | None = None,
    method: str | None = None,
    path: str | None = None,
    source_ip: str | None = None,
    groups: tuple[str, ...] = (),
    timeout: float = 5.0,
) -> bool | None:
    """The evaluator's answer over HTTP: True/False, or None when no version of ``policy``
    is applied yet. Facts left out are unknown to the evaluator (their criteria never
    match); ``at`` defaults to the simulator's clock."""
    query: dict[str, str] = {"policy": policy, "email": email}
    if at is not None:
        query["at"] = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    for key, value in (("method", method), ("path", path), ("source_ip", source_ip)):
        if value is not None:
            query[key] = value
    if groups:
        query["groups"] = ",".join(groups)
    answer = requests.get(f"{root_url.rstrip('/')}/_sim/evaluate", params=query, timeout=timeout)
    if answer.status_code == 404:
        return None
    answer.raise_for_status()
    return bool(answer.json()["allow"])


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
