"""Shared fixtures: a real JWKS server, a Pomerium-like signer, and clients that carry assertions.

Services: PostgreSQL and Redis tests are marked ``postgres`` / ``redis``. Outside CI they
skip when the service is absent; with CI=true they fail instead (see ``require_service``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from apps.accounts.assertion import reset_key_caches
from apps.accounts.models import User
from tests.support.jwks import AUDIENCE, JwksServer, SigningKey, claims_for, mint
from tests.support.people import alice, bob, erin  # noqa: F401 - the shared people (fixtures)

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_service(name: str, available: bool, why: str) -> None:
    """Skip locally, fail in CI: CI must never pass by skipping a service test."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{name} is required in CI but unavailable: {why}")
    pytest.skip(f"{name} unavailable: {why}")


def redis_url() -> str:
    url = os.environ.get("CELERY_BROKER_URL") or os.environ.get("REDIS_URL") or ""
    return url if url.startswith("redis") else "redis://127.0.0.1:6379/0"


def redis_available(url: str) -> bool:
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
        return True
    except Exception:
        return False


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Marked tests need their service: skip locally, fail in CI (before any fixture runs)."""
    if item.get_closest_marker("postgres"):
        require_service(
            "PostgreSQL",
            connection.vendor == "postgresql",
            f"DATABASE_URL selects {connection.vendor}; set it to a PostgreSQL database",
        )
    if item.get_closest_marker("redis"):
        url = redis_url()
        require_service("Redis", redis_available(url), f"no answer at {url}")


@pytest.fixture
def _needs_postgres() -> None:
    require_service(
        "PostgreSQL",
        connection.vendor == "postgresql",
        f"DATABASE_URL selects {connection.vendor}; set it to a PostgreSQL database",
    )


@pytest.fixture
def _needs_redis() -> None:
    url = redis_url()
    require_service("Redis", redis_available(url), f"no answer at {url}")


@pytest.fixture(scope="session")
def jwks_server() -> Iterator[JwksServer]:
    server = JwksServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def signing_key(jwks_server: JwksServer) -> SigningKey:
    return jwks_server.publish(SigningKey.generate("ES256"))


@pytest.fixture(autouse=True)
def pomerium_settings(
    settings: Any, jwks_server: JwksServer, signing_key: SigningKey
) -> Iterator[None]:
    settings.JWKS_ENDPOINT = jwks_server.url
    settings.POMERIUM_JWT_AUDIENCE = AUDIENCE
    settings.POMERIUM_JWT_ISSUER = ""
    settings.PORTAL_ADMIN_GROUPS = ["portal-admins"]
    settings.PORTAL_ADMIN_EMAILS = []
    settings.PORTAL_APPROVER_GROUPS = ["approvers"]
    settings.PORTAL_AUDITOR_GROUPS = ["compliance"]
    settings.ZERO_SYNC_ENABLED = False
    settings.ALLOWED_HOSTS = ["testserver", "localhost", AUDIENCE]
    reset_key_caches()
    yield
    reset_key_caches()


class PomeriumClient(Client):
    """A test client that sends a freshly signed assertion with every request, like Pomerium."""

    def __init__(self, key: SigningKey, identity: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.key = key
        self.identity = identity

    def request(self, **request: Any) -> Any:
        if self.identity:
            token = mint(self.key, claims_for(**self.identity))
            request.setdefault("HTTP_X_POMERIUM_JWT_ASSERTION", token)
        return super().request(**request)


@pytest.fixture
def as_user(signing_key: SigningKey) -> Any:
    """``as_user(sub, email, groups=[...])`` → a client signed in as that person."""

    def make(
        sub: str, email: str, *, groups: list[str] | None = None, name: str = ""
    ) -> PomeriumClient:
        return PomeriumClient(
            signing_key, {"sub": sub, "email": email, "groups": groups or [], "name": name}
        )

    return make


@pytest.fixture
def assertion_for(signing_key: SigningKey) -> Any:
    def make(sub: str, email: str, **kwargs: Any) -> str:
        return mint(signing_key, claims_for(sub, email, **kwargs))

    return make


@pytest.fixture
def signed_in(as_user: Any) -> Callable[..., tuple[PomeriumClient, User]]:
    """``signed_in("alice", groups=[...])`` → (client, user), the user created by the middleware.

    The first request is what creates the person (and their role groups) from the
    assertion, exactly as in production; the client keeps sending fresh assertions.
    """

    def make(name: str, *, groups: list[str] | None = None) -> tuple[PomeriumClient, User]:
        client = as_user(f"idp|{name}", f"{name}@example.com", groups=groups or [], name=name)
        assert client.get("/preferences").status_code == 200
        return client, User.objects.get(username=f"idp|{name}")

    return make


# People by role, as their groups make them (PORTAL_* groups set in ``pomerium_settings``).


@pytest.fixture
def auditor(as_user: Any) -> Any:
    return as_user("idp|carol", "carol@example.com", groups=["compliance"], name="Carol")


@pytest.fixture
def superuser(as_user: Any) -> Any:
    return as_user("idp|root", "root@example.com", groups=["portal-admins"])


@pytest.fixture
def approver(as_user: Any) -> Any:
    return as_user("idp|bob", "bob@example.com", groups=["approvers"])


@pytest.fixture
def plain_user(as_user: Any) -> Any:
    return as_user("idp|dave", "dave@example.com", groups=["engineering"])


@pytest.fixture
def standby_approver(db: Any) -> Any:
    """An approver of the usual test resources (group "approvers") who takes no part in the
    test. A request nobody could approve is refused when filed (``apps/access/stages.py``),
    so modules whose requests wait for an approver they never create use this one."""
    from tests.factories import UserFactory

    return UserFactory(
        username="idp|standby",
        email="standby@example.com",
        display_name="Standby",
        groups=["approvers"],
    )


@pytest.fixture(scope="module")
def demo_stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """The real demo stack (``tests.support.demo_stack``), one per test module: the one way
    tests bring it up. A part that does not start fails the test, never skips it."""
    from tests.support.demo_stack import running_demo_stack

    name = request.module.__name__.rpartition(".")[2]
    with running_demo_stack(tmp_path_factory.mktemp("demo-data"), name) as stack:
        yield stack


@pytest.fixture
def eager_celery() -> Iterator[None]:
    """Run ``.delay()`` in-process (the Celery app caches its config, so set it there).

    Eager exceptions are not propagated at once: as with a real broker, a task's failure does
    not reach the code that enqueued it, and eager retries run as Celery runs them
    (immediately); ``.get()`` on the result still raises a task's error.
    """
    from jitportal.celery import app

    saved = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, False
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = saved
