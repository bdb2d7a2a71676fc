"""The dev sign-in proxy in front of an echoing upstream (the proxy tests' own fixtures), and a
stand-in portal API with a session stored for it."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from jitcli.sessions import Session, save_session
from tests.cli.canned import CannedPortal, fake_token
from tests.demo.test_proxy import proxy, upstream

__all__ = ["portal", "proxy", "upstream"]


@pytest.fixture
def portal(tmp_path, monkeypatch) -> Iterator[CannedPortal]:
    """A stand-in portal API (``canned.CannedPortal``); Alice's session stored for it."""
    server = CannedPortal()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    save_session(
        Session(server.url, fake_token(email="alice@example.com", exp=int(time.time()) + 600))
    )
    yield server
    server.close()
