"""The people most tests share, as pytest fixtures (``tests/conftest.py`` imports them).

One set of names and groups for the whole suite:

* ``alice``: a requester, in ``engineering``;
* ``bob`` and ``erin``: approvers (``approvers``, the group the test settings name in
  ``PORTAL_APPROVER_GROUPS`` and the resources' ``approver_groups``).

Each is a user row as the middleware would have made it (``idp|<name>``, ``<name>@example.com``,
display name ``<Name>``), not signed in. Modules that need a signed-in client define their own
fixture from ``signed_in`` or ``api_as`` with the same groups.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import UserFactory

GROUPS: dict[str, list[str]] = {
    "alice": ["engineering"],
    "bob": ["approvers"],
    "erin": ["approvers"],
}


def person(name: str) -> Any:
    """The user row of one of the shared people (made once per test)."""
    return UserFactory(
        username=f"idp|{name}",
        email=f"{name}@example.com",
        display_name=name.capitalize(),
        groups=GROUPS[name],
    )


@pytest.fixture
def alice() -> Any:
    """A requester, in ``engineering``."""
    return person("alice")


@pytest.fixture
def bob() -> Any:
    """An approver."""
    return person("bob")


@pytest.fixture
def erin() -> Any:
    """A second approver."""
    return person("erin")
