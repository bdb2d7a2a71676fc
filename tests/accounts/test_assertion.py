"""Conformance of the assertion check, over real HTTP to a loopback JWKS server.

Every rejected case asserts the 403 page, that no user was created, that no session was
kept, and that the rejection was audited with its reason.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
import pytest
from django.test import Client

from apps.accounts.actions import AccountAction
from apps.accounts.assertion import reset_key_caches
from apps.accounts.models import User
from apps.audit.models import AuditEvent
from tests.support.jwks import AUDIENCE, SigningKey, claims_for, mint

pytestmark = pytest.mark.django_db

HEADER = "HTTP_X_POMERIUM_JWT_ASSERTION"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}."


def good_claims(**overrides: Any) -> dict[str, Any]:
    claims = claims_for("idp|alice", "alice@example.com", groups=["engineering"], name="Alice")
    claims.update(overrides)
    return claims


def assert_rejected(response: Any, code: str, status: int = 403) -> None:
    assert response.status_code == status
    body = response.content.decode()
    assert code in body
    assert "Traceback" not in body
    assert not User.objects.exists()
    event = AuditEvent.objects.get(action=AccountAction.ASSERTION_REJECTED)
    assert event.details["reason"] == code
    assert event.actor is None


def get_with(token: str | None) -> Any:
    extra = {HEADER: token} if token is not None else {}
    return Client().get("/", **extra)


@pytest.fixture
def rsa_key(jwks_server: Any) -> SigningKey:
    key = SigningKey.generate("RS256")
    jwks_server.publish(key)
    yield key
    jwks_server.keys.remove(key)


def test_valid_es256_token_is_accepted(signing_key: SigningKey) -> None:
    response = get_with(mint(signing_key, good_claims()))
    assert response.status_code == 200
    user = User.objects.get(username="idp|alice")
    assert user.email == "alice@example.com"
    assert AuditEvent.objects.filter(action=AccountAction.USER_CREATED, actor=user).count() == 1


def test_valid_rs256_token_is_accepted(rsa_key: SigningKey) -> None:
    response = get_with(mint(rsa_key, good_claims()))
    assert response.status_code == 200
    assert User.objects.filter(username="idp|alice").exists()


def test_uri_issuer_format_is_accepted(signing_key: SigningKey) -> None:
    response = get_with(mint(signing_key, good_claims(iss=f"https://{AUDIENCE}/")))
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("token", "code"),
    [
        (None, "missing"),
        ("", "missing"),
        ("not-a-jws", "malformed"),
        ("aGVsbG8.d29ybGQ", "malformed"),
        ("a.b.c.d", "malformed"),
        ("!!!." + b64(b"{}") + ".c2ln", "malformed"),
        ("e30x." + b64(b"{}") + ".c2ln", "malformed"),
        (b64(b'{"alg": "ES256"') + ".e30.c2ln", "malformed"),
        (b64(b'["ES256"]') + ".e30.c2ln", "malformed"),
        (b64(b"\xff\xfe{") + ".e30.c2ln", "malformed"),
        (b64(b"[" * 100_000) + ".e30.c2ln", "malformed"),
        ("\u00e9" + b64(b"{}") + ".e30.c2ln", "malformed"),
    ],
    ids=[
        "no-header",
        "empty",
        "not-a-jws",
        "two-segments",
        "four-segments",
        "header-not-base64",
        "header-bad-padding",
        "header-bad-json",
        "header-not-an-object",
        "header-not-utf8",
        "header-nested-too-deep",
        "header-not-ascii",
    ],
)
def test_structural_rejections(token: str | None, code: str) -> None:
    assert_rejected(get_with(token), code)


@pytest.mark.parametrize("part", ["payload", "signature"])
def test_undecodable_payload_or_signature_is_malformed(signing_key: SigningKey, part: str) -> None:
    # The header alone picks the key; the rest is parsed once, by the verification itself.
    header, payload, signature = mint(signing_key, good_claims()).split(".")
    if part == "payload":
        payload = "a"  # one base64 character cannot be decoded
    else:
        signature = "a"
    assert_rejected(get_with(f"{header}.{payload}.{signature}"), "malformed")


def test_right_kid_wrong_key(signing_key: SigningKey) -> None:
    impostor = SigningKey.generate("ES256")
    impostor.kid = signing_key.kid
    assert_rejected(get_with(mint(impostor, good_claims())), "bad_signature")


def test_unknown_kid() -> None:
    stranger = SigningKey.generate("ES256")
    assert_rejected(get_with(mint(stranger, good_claims())), "unknown_key")


def test_alg_none(signing_key: SigningKey) -> None:
    token = unsigned({"alg": "none", "kid": signing_key.kid, "typ": "JWT"}, good_claims())
    assert_rejected(get_with(token), "bad_algorithm")


def test_hs256_signed_with_public_key_as_secret(signing_key: SigningKey) -> None:
    secret = json.dumps(signing_key.jwk).encode()
    header = {"alg": "HS256", "kid": signing_key.kid, "typ": "JWT"}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(good_claims()).encode())}"
    import hashlib
    import hmac

    sig = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    assert_rejected(get_with(f"{signing_input}.{b64(sig)}"), "bad_algorithm")


def test_rs256_from_unpublished_key_claiming_published_kid(rsa_key: SigningKey) -> None:
    unpublished = SigningKey.generate("RS256")
    unpublished.kid = rsa_key.kid
    assert_rejected(get_with(mint(unpublished, good_claims())), "bad_signature")


def test_rs256_token_naming_an_ec_key(signing_key: SigningKey) -> None:
    rsa = SigningKey.generate("RS256")
    rsa.kid = signing_key.kid
    assert_rejected(get_with(mint(rsa, good_claims())), "bad_algorithm")


def test_tampered_payload(signing_key: SigningKey) -> None:
    token = mint(signing_key, good_claims())
    head, _, sig = token.split(".")
    forged = b64(json.dumps(good_claims(email="mallory@example.com")).encode())
    assert_rejected(get_with(f"{head}.{forged}.{sig}"), "bad_signature")


def test_expired(signing_key: SigningKey) -> None:
    past = int(time.time()) - 1000
    assert_rejected(get_with(mint(signing_key, good_claims(iat=past, exp=past + 300))), "expired")


def test_issued_in_the_future(signing_key: SigningKey) -> None:
    future = int(time.time()) + 600
    assert_rejected(
        get_with(mint(signing_key, good_claims(iat=future, exp=future + 300))), "issued_in_future"
    )


def test_missing_exp(signing_key: SigningKey) -> None:
    claims = good_claims()
    del claims["exp"]
    assert_rejected(get_with(mint(signing_key, claims)), "missing_claim")


def test_missing_iat(signing_key: SigningKey) -> None:
    claims = good_claims()
    del claims["iat"]
    assert_rejected(get_with(mint(signing_key, claims)), "missing_claim")


def test_wrong_audience(signing_key: SigningKey) -> None:
    assert_rejected(get_with(mint(signing_key, good_claims(aud="other.test"))), "wrong_audience")


def test_wrong_issuer(signing_key: SigningKey) -> None:
    assert_rejected(get_with(mint(signing_key, good_claims(iss="evil.test"))), "wrong_issuer")


def test_no_email_is_refused(signing_key: SigningKey) -> None:
    assert_rejected(get_with(mint(signing_key, good_claims(email=""))), "no_email")


def test_jku_header_is_ignored(signing_key: SigningKey, jwks_server: Any) -> None:
    """A token that points at its own key set is checked against ours, and fails."""
    attacker = SigningKey.generate("ES256")
    token = mint(attacker, good_claims(), headers={"jku": "http://127.0.0.1:9/jwks.json"})
    before = jwks_server.fetches
    assert_rejected(get_with(token), "unknown_key")
    # Only our configured endpoint was read (once, for the unknown kid).
    assert jwks_server.fetches - before <= 1


def test_jku_with_valid_signature_still_uses_configured_keys(signing_key: SigningKey) -> None:
    token = mint(signing_key, good_claims(), headers={"jku": "http://127.0.0.1:9/jwks.json"})
    assert get_with(token).status_code == 200


def test_rejection_page_never_echoes_the_token(signing_key: SigningKey) -> None:
    token = mint(signing_key, good_claims(aud="other.test"))
    response = get_with(token)
    assert token not in response.content.decode()
    assert token not in json.dumps(AuditEvent.objects.get().details)


def test_jwks_unreachable_fails_closed_with_503(jwks_server: Any, signing_key: SigningKey) -> None:
    jwks_server.fail = True
    try:
        response = get_with(mint(signing_key, good_claims()))
    finally:
        jwks_server.fail = False
    assert_rejected(response, "keys_unavailable", status=503)


def test_thousand_requests_one_jwks_fetch(jwks_server: Any, signing_key: SigningKey) -> None:
    reset_key_caches()
    before = jwks_server.fetches
    client = Client()
    for _ in range(1000):
        response = client.get("/", **{HEADER: mint(signing_key, good_claims())})
        assert response.status_code == 200
    assert jwks_server.fetches - before == 1


def test_unknown_kid_flood_is_rate_limited(jwks_server: Any, signing_key: SigningKey) -> None:
    from apps.accounts.assertion import key_cache

    reset_key_caches()
    now = [1000.0]
    key_cache().clock = lambda: now[0]
    get_with(mint(signing_key, good_claims()))  # warm the cache: one fetch
    before = jwks_server.fetches
    for _ in range(50):
        get_with(mint(SigningKey.generate("ES256"), good_claims()))
    assert jwks_server.fetches - before == 0  # within JWKS_MIN_REFRESH_SECONDS: none
    now[0] += 31
    for _ in range(50):
        get_with(mint(SigningKey.generate("ES256"), good_claims()))
    assert jwks_server.fetches - before == 1  # one interval later: exactly one more


def test_key_rotation_without_restart(
    jwks_server: Any, signing_key: SigningKey, settings: Any
) -> None:
    settings.JWKS_MIN_REFRESH_SECONDS = 0  # let the unknown kid trigger a refetch at once
    reset_key_caches()
    assert get_with(mint(signing_key, good_claims())).status_code == 200
    new_key = SigningKey.generate("ES256")
    saved = list(jwks_server.keys)
    jwks_server.keys[:] = [new_key]  # new key published, old one removed
    try:
        assert get_with(mint(new_key, good_claims())).status_code == 200
        # The refetch replaced the set: the removed key no longer verifies.
        response = get_with(mint(signing_key, good_claims()))
        assert response.status_code == 403
    finally:
        jwks_server.keys[:] = saved


def test_jwt_library_refuses_none_even_if_asked() -> None:
    """Guard against a PyJWT regression: our allow-list never includes 'none'."""
    from apps.accounts.assertion import ALLOWED_ALGORITHMS

    assert set(ALLOWED_ALGORITHMS) == {"ES256", "RS256"}
    with pytest.raises(jwt.InvalidAlgorithmError):
        jwt.decode(
            unsigned({"alg": "none"}, good_claims()), "", algorithms=list(ALLOWED_ALGORITHMS)
        )
