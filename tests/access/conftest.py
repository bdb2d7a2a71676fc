"""Fixtures for the requester pages and the admin: people signed in through Pomerium."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import PomeriumClient
from tests.support.jwks import SigningKey


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


# The people of the service tests (``alice``, ``bob``, ``erin``) are the shared ones of
# ``tests/support/people.py``. Modules that sign people in through the middleware define their
# own ``alice``/``bob`` from ``signed_in``, with the same groups.
