"""The trail's source address and request id: chosen by the trusted proxy, never by the client."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from apps.accounts.actions import AccountAction
from apps.audit import chain
from apps.audit.models import AuditEvent
from apps.audit.services import event_fields
from tests.support.jwks import SigningKey, claims_for, mint

pytestmark = pytest.mark.django_db

HEADER = "HTTP_X_POMERIUM_JWT_ASSERTION"
PORTAL_ID = re.compile(r"^[0-9a-f]{32}$")


def sign_in(key: SigningKey, sub: str, email: str, **meta: str) -> AuditEvent:
    Client().get("/", **{HEADER: mint(key, claims_for(sub, email))}, **meta)
    return AuditEvent.objects.filter(action=AccountAction.USER_CREATED).latest("seq")


def test_a_forged_leftmost_forwarded_for_does_not_reach_the_trail(
    signing_key: SigningKey,
) -> None:
    # The client sends "X-Forwarded-For: 198.51.100.66"; Pomerium appends what it saw.
    event = sign_in(
        signing_key,
        "idp|alice",
        "alice@example.com",
        HTTP_X_FORWARDED_FOR="198.51.100.66, 203.0.113.9",
        REMOTE_ADDR="10.0.0.2",
    )
    assert event.ip == "203.0.113.9"


@pytest.mark.parametrize(
    ("count", "forwarded", "expected"),
    [
        (2, "198.51.100.66, 203.0.113.9, 10.0.0.7", "203.0.113.9"),  # a load balancer too
        (1, "", "10.0.0.2"),  # no header: the socket's peer
        (2, "203.0.113.9", "10.0.0.2"),  # fewer entries than proxies: nothing trustworthy
        (1, "not-an-address", None),
    ],
)
def test_the_trusted_proxy_count_picks_the_entry(
    signing_key: SigningKey, settings: Any, count: int, forwarded: str, expected: str | None
) -> None:
    settings.TRUSTED_PROXY_COUNT = count
    meta = {"REMOTE_ADDR": "10.0.0.2"}
    if forwarded:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded
    assert sign_in(signing_key, "idp|alice", "alice@example.com", **meta).ip == expected


def test_a_forged_request_id_does_not_join_two_peoples_actions(signing_key: SigningKey) -> None:
    forged = "shared-id-0001"
    alice = sign_in(signing_key, "idp|alice", "alice@example.com", HTTP_X_REQUEST_ID=forged)
    bob = sign_in(signing_key, "idp|bob", "bob@example.com", HTTP_X_REQUEST_ID=forged)
    assert PORTAL_ID.match(alice.request_id) and PORTAL_ID.match(bob.request_id)
    assert alice.request_id != bob.request_id
    assert forged not in (alice.request_id, bob.request_id)
    # What the proxy sent is kept apart, and it is chained like every other field.
    assert alice.upstream_request_id == forged
    assert chain.entry_hash(event_fields(alice)) == alice.hash
    changed = {**event_fields(alice), "upstream_request_id": "other-id-0002"}
    assert chain.entry_hash(changed) != alice.hash


def test_without_a_trusted_proxy_no_upstream_id_is_kept(
    signing_key: SigningKey, settings: Any
) -> None:
    settings.TRUSTED_PROXY_COUNT = 0
    event = sign_in(
        signing_key,
        "idp|alice",
        "alice@example.com",
        HTTP_X_REQUEST_ID="client-chosen-id",
        HTTP_X_FORWARDED_FOR="198.51.100.66",
        REMOTE_ADDR="10.0.0.2",
    )
    assert event.upstream_request_id == ""
    assert event.ip == "10.0.0.2"


def test_the_response_names_the_portals_request_id(signing_key: SigningKey) -> None:
    response = Client().get(
        "/",
        HTTP_X_REQUEST_ID="client-chosen-id",
        **{HEADER: mint(signing_key, claims_for("idp|alice", "alice@example.com"))},
    )
    event = AuditEvent.objects.get(action=AccountAction.USER_CREATED)
    assert response["X-Request-Id"] == event.request_id != "client-chosen-id"


def test_entries_without_an_upstream_id_hash_as_before() -> None:
    # Older entries (and exports) have no upstream_request_id: an empty one is not hashed.
    fields = dict.fromkeys(chain.CHAINED_FIELDS, "")
    fields.update(seq=1, created_at="2026-11-23T10:00:00.000000+00:00", actor_id=None, ip=None)
    fields["details"] = {}
    assert chain.entry_hash(fields) == chain.entry_hash({**fields, "upstream_request_id": ""})
