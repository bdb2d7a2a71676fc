"""Verifying Pomerium's ``X-Pomerium-Jwt-Assertion``.

Contract (see docs/architecture.md "How a request is trusted" and docs/identity.md):

* Only ES256 and RS256 are accepted; ``none`` and HMAC never are, whatever the header says.
* The key comes from the configured ``JWKS_ENDPOINT`` by ``kid``; ``jku``/``x5u``/the
  unverified ``iss`` are never used to find keys.
* ``aud`` and ``iss`` must match configuration; ``exp``, ``iat``, ``iss``, ``aud`` and
  ``sub`` are required; ``iat`` may not be in the future (both with a small leeway).
* Keys are cached per process: an unknown ``kid`` causes at most one fetch per
  ``JWKS_MIN_REFRESH_SECONDS``, so bogus tokens cannot hammer Pomerium, and the set is
  re-read after ``JWKS_CACHE_SECONDS`` so a removed key stops working. In steady state a
  request causes no fetch at all.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
import requests
from django.conf import settings

from .emails import InvalidEmail, validate_email

log = logging.getLogger(__name__)

ALLOWED_ALGORITHMS = ("ES256", "RS256")


class AssertionRejected(Exception):
    """No acceptable assertion. ``code`` is stable, ``message`` is for people."""

    status = 403

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        # Extra facts for the audit entry (never shown on the page, never a secret).
        self.details = details or {}


class KeysUnavailable(AssertionRejected):
    """The JWKS endpoint could not be read and no cached key fits: fail closed, but say why."""

    status = 503


@dataclass(frozen=True)
class Identity:
    """What a verified assertion says about the person."""

    sub: str
    email: str
    name: str
    groups: tuple[str, ...]
    jti: str = ""
    sid: str = ""
    claims: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


class KeyCache:
    """JWKS keys by ``kid``, fetched from one fixed URL, refreshed sparingly."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 5.0,
        min_refresh: float = 30.0,
        max_age: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
        session: requests.Session | None = None,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.min_refresh = min_refresh
        self.max_age = max_age
        self.clock = clock
        self.session = session or requests.Session()
        self.fetch_count = 0
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None  # last successful fetch
        self._attempted_at: float | None = None  # last attempt, successful or not
        self._lock = threading.Lock()

    def key_for(self, kid: str) -> jwt.PyJWK:
        with self._lock:
            now = self.clock()
            stale = self._fetched_at is None or now - self._fetched_at >= self.max_age
            may_retry = self._attempted_at is None or now - self._attempted_at >= self.min_refresh
            if (stale or kid not in self._keys) and may_retry:
                self._refresh(now)
            key = self._keys.get(kid)
        if key is not None:
            return key
        if self._fetched_at is None:
            raise KeysUnavailable(
                "keys_unavailable",
                "The portal cannot read Pomerium's signing keys right now, so it cannot "
                "check who you are. Try again in a minute.",
            )
        raise AssertionRejected(
            "unknown_key", "The identity assertion was signed with a key Pomerium does not publish."
        )

    def _refresh(self, now: float) -> None:
        self._attempted_at = now
        self.fetch_count += 1
        try:
            response = self.session.get(self.url, timeout=self.timeout)
            response.raise_for_status()
            document = response.json()
        except (requests.RequestException, ValueError) as exc:
            # Keep whatever keys we had: Pomerium being briefly unreachable must not lock
            # everyone out, and a key we already trust is still Pomerium's.
            log.warning("JWKS fetch from %s failed: %s", self.url, type(exc).__name__)
            return
        keys: dict[str, jwt.PyJWK] = {}
        for jwk in document.get("keys", []) if isinstance(document, dict) else []:
            parsed = _parse_jwk(jwk)
            if parsed is not None:
                keys[jwk["kid"]] = parsed
        self._keys = keys
        self._fetched_at = now
        log.info("JWKS refreshed from %s: %d signing key(s)", self.url, len(keys))


def _parse_jwk(jwk: Any) -> jwt.PyJWK | None:
    if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str):
        return None
    if jwk.get("use", "sig") != "sig" or jwk.get("kty") not in ("EC", "RSA"):
        return None  # never an HMAC ("oct") key
    try:
        key = jwt.PyJWK(jwk)
    except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
        return None
    return key if key.algorithm_name in ALLOWED_ALGORITHMS else None


_caches: dict[str, KeyCache] = {}
_caches_lock = threading.Lock()


def key_cache() -> KeyCache:
    """The process-wide cache for the configured endpoint."""
    url = settings.JWKS_ENDPOINT
    with _caches_lock:
        cache = _caches.get(url)
        if cache is None:
            cache = _caches[url] = KeyCache(
                url,
                timeout=settings.JWKS_TIMEOUT_SECONDS,
                min_refresh=settings.JWKS_MIN_REFRESH_SECONDS,
                max_age=settings.JWKS_CACHE_SECONDS,
            )
        return cache


def reset_key_caches() -> None:
    with _caches_lock:
        _caches.clear()


def expected_issuers() -> list[str]:
    if settings.POMERIUM_JWT_ISSUER:
        return [settings.POMERIUM_JWT_ISSUER]
    host = settings.POMERIUM_JWT_AUDIENCE
    # Pomerium writes the route host, or https://host/ with jwt_issuer_format: uri.
    return [host, f"https://{host}/"]


_CLAIM_ERRORS: tuple[tuple[type[Exception], str, str], ...] = (
    (jwt.ExpiredSignatureError, "expired", "The identity assertion has expired."),
    (
        jwt.ImmatureSignatureError,
        "issued_in_future",
        "The identity assertion claims to be issued in the future; check the clocks.",
    ),
    (
        jwt.InvalidAudienceError,
        "wrong_audience",
        "The identity assertion was issued for another application.",
    ),
    (
        jwt.InvalidIssuerError,
        "wrong_issuer",
        "The identity assertion was issued by another Pomerium route.",
    ),
    (
        jwt.MissingRequiredClaimError,
        "missing_claim",
        "The identity assertion lacks a required claim.",
    ),
    (
        jwt.InvalidSignatureError,
        "bad_signature",
        "The identity assertion's signature does not match Pomerium's key.",
    ),
    # After InvalidSignatureError, its subclass: the payload or signature segment does not
    # decode (the header alone was read before the key was chosen).
    (jwt.DecodeError, "malformed", "The identity assertion is not a signed token."),
)


def _malformed() -> AssertionRejected:
    return AssertionRejected("malformed", "The identity assertion is not a signed token.")


def _unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header of a compact JWS, read from its first segment alone.

    Only ``alg`` and ``kid`` are needed to pick the key, so the payload and signature are
    left to the one full parse in ``jwt.decode`` (``jwt.get_unverified_header`` would parse
    and base64-decode the whole token a second time). Anything that is not three
    dot-separated segments with a base64url JSON object first is ``malformed``.
    """
    if token.count(".") != 2:
        raise _malformed()
    segment = token[: token.index(".")]
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, RecursionError):  # binascii.Error and UnicodeDecodeError included
        raise _malformed() from None
    if not isinstance(header, dict):
        raise _malformed()
    return header


def verify(token: str | None) -> Identity:
    """Return the identity in ``token`` or raise ``AssertionRejected`` saying why not."""
    if not token:
        raise AssertionRejected(
            "missing",
            "No identity assertion reached the portal. It must be opened through Pomerium, "
            "with Pass Identity Headers enabled on the route.",
        )
    if not settings.JWKS_ENDPOINT or not settings.POMERIUM_JWT_AUDIENCE:
        raise KeysUnavailable(
            "not_configured", "The portal is not configured to verify Pomerium assertions."
        )
    header = _unverified_header(token)
    alg, kid = header.get("alg"), header.get("kid")
    if alg not in ALLOWED_ALGORITHMS:
        raise AssertionRejected(
            "bad_algorithm", "The identity assertion uses a signing algorithm the portal refuses."
        )
    if not isinstance(kid, str) or not kid:
        raise AssertionRejected("unknown_key", "The identity assertion names no signing key.")
    key = key_cache().key_for(kid)
    if key.algorithm_name != alg:
        raise AssertionRejected(
            "bad_algorithm", "The identity assertion's algorithm does not match its key."
        )
    try:
        claims = jwt.decode(
            token,
            key.key,
            algorithms=[alg],
            audience=settings.POMERIUM_JWT_AUDIENCE,
            issuer=expected_issuers(),
            leeway=settings.POMERIUM_JWT_LEEWAY_SECONDS,
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
        )
    except jwt.PyJWTError as exc:
        for error_type, code, message in _CLAIM_ERRORS:
            if isinstance(exc, error_type):
                raise AssertionRejected(code, message) from None
        raise AssertionRejected("invalid", "The identity assertion is not valid.") from None
    return _identity(claims)


def _storable(group: Any) -> bool:
    """A group name the portal can keep: a non-empty string PostgreSQL can store (no NUL, no
    lone surrogate). Any other entry is left out, as if the claim did not carry it."""
    if not isinstance(group, str) or not group or "\x00" in group:
        return False
    try:
        group.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _identity(claims: dict[str, Any]) -> Identity:
    sub = claims.get("sub") or claims.get("user")
    email = claims.get("email")
    if not isinstance(sub, str) or not sub:
        raise AssertionRejected("missing_claim", "The identity assertion names no user.")
    if not isinstance(email, str) or not email:
        raise AssertionRejected(
            "no_email",
            "The identity assertion carries no email address; the portal serves people, "
            "not service accounts.",
        )
    try:
        validate_email(email)
    except InvalidEmail as exc:
        raise AssertionRejected(
            "invalid_email",
            f"{exc} The portal cannot tell who you are; ask your identity provider's "
            "administrators to fix the address.",
            details={"sub": sub[:150], "email": repr(email[:300])},
        ) from None
    groups = claims.get("groups") or []
    name = claims.get("name")
    return Identity(
        sub=sub[:150],
        # Exactly as Pomerium carries it: its rules compare this string byte for byte.
        email=email,
        name=name[:200] if isinstance(name, str) else "",
        # Whole names, however long (``roles.claim_group_name`` bounds what is stored):
        # cutting them made two groups with one long prefix the same group.
        groups=tuple(sorted({g for g in groups if _storable(g)}))
        if isinstance(groups, list)
        else (),
        jti=str(claims.get("jti", ""))[:64],
        sid=str(claims.get("sid", ""))[:128],
        claims=claims,
    )


def identity_digest(identity: Identity, *, roles: tuple[str, ...]) -> str:
    payload = [identity.sub, identity.email, identity.name, list(identity.groups), list(roles)]
    return hashlib.sha256(json.dumps(payload).encode()).hexdigest()
