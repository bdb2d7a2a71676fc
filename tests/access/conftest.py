"""Fixtures for the requester pages and the admin: people signed in through Pomerium."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from apps.accounts.models import User
from tests.conftest import PomeriumClient
from tests.factories import UserFactory
from tests.support.jwks import SigningKey

SignedIn = tuple[PomeriumClient, User]


@pytest.fixture
def signed_in(as_user: Any) -> Callable[..., SignedIn]:
    """``signed_in("alice", groups=[...])`` → (client, user), the user created by the middleware.

    The first request is what creates the person (and their role groups) from the
    assertion, exactly as in production; the client keeps sending fresh assertions.
    """

    def make(name: str, *, groups: list[str] | None = None) -> SignedIn:
        client = as_user(f"idp|{name}", f"{name}@example.com", groups=groups or [], name=name)
        assert client.get("/preferences").status_code == 200
        return client, User.objects.get(username=f"idp|{name}")

    return make


@pytest.fixture
def csrf_client(signing_key: SigningKey) -> Callable[..., PomeriumClient]:
    """Like ``as_user`` but with CSRF checks on, as a browser would face them."""

    def make(name: str, *, groups: list[str] | None = None) -> PomeriumClient:
        return PomeriumClient(
            signing_key,
            {"sub": f"idp|{name}", "email": f"{name}@example.com", "groups": groups or []},
            enforce_csrf_checks=True,
        )

    return make


# The people of the service tests, made directly (no sign-in). Modules that sign people in
# through the middleware define their own ``alice``/``bob`` from ``signed_in``.
@pytest.fixture
def alice() -> Any:
    return UserFactory(username="idp|alice", email="alice@example.com", groups=["engineering"])


@pytest.fixture
def bob() -> Any:
    return UserFactory(username="idp|bob", email="bob@example.com", groups=["approvers"])


@pytest.fixture
def erin() -> Any:
    return UserFactory(username="idp|erin", email="erin@example.com", groups=["approvers"])
