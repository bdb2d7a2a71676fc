"""People calling the JSON API through the real assertion middleware (loopback JWKS)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from apps.access.models import Resource
from apps.accounts.models import User
from tests.conftest import PomeriumClient
from tests.factories import ResourceFactory


class ApiClient:
    """JSON in, JSON out, like the CLI: ``Content-Type: application/json`` on writes."""

    def __init__(self, client: PomeriumClient) -> None:
        self.client = client

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get("/api/v1" + path, params)

    def post(self, path: str, body: Any = None, **headers: Any) -> Any:
        return self.client.post(
            "/api/v1" + path,
            json.dumps({} if body is None else body),
            content_type="application/json",
            **headers,
        )

    def user(self) -> User:
        self.get("/resources")  # the first request creates the person from the assertion
        return User.objects.get(username=self.client.identity["sub"])


@pytest.fixture
def api_as(as_user: Any) -> Callable[..., ApiClient]:
    def make(name: str, *, groups: list[str] | None = None) -> ApiClient:
        return ApiClient(
            as_user(f"idp|{name}", f"{name}@example.com", groups=groups or [], name=name)
        )

    return make


@pytest.fixture
def alice(api_as: Any) -> ApiClient:
    return api_as("alice", groups=["engineering"])


@pytest.fixture
def bob(api_as: Any) -> ApiClient:
    return api_as("bob", groups=["approvers"])


@pytest.fixture
def carol(api_as: Any) -> ApiClient:
    return api_as("carol", groups=["compliance"])


@pytest.fixture
def grafana(db: Any) -> Resource:
    return ResourceFactory(
        slug="grafana-admin",
        name="Grafana admin",
        duration_choices=[30, 60, 240],
        max_duration_minutes=480,
        justification_min_length=10,
    )


def error(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    return dict(body["error"])
