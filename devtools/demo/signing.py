"""Pomerium-shaped assertions for the demo: an ES256 key, its JWKS entry, and minting.

Mirrors what Pomerium does (docs/identity.md): the kid is the lowercase hex
SHA-256 RFC 7638 thumbprint of the public key, and each assertion carries iss = aud = the
route host, iat, exp = iat + 300, a fresh jti, sub = user, email, groups, name and sid.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
import uuid
from collections.abc import Mapping
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from devtools.demo.identities import DemoIdentity

# Pomerium's assertions live five minutes.
ASSERTION_LIFETIME_SECONDS = 300


class _Omit:
    """Marker for :meth:`AssertionSigner.mint` overrides: leave this claim out."""

    def __repr__(self) -> str:
        return "OMIT"


OMIT: Any = _Omit()


def _b64url_uint(value: int, size: int) -> str:
    return base64.urlsafe_b64encode(value.to_bytes(size, "big")).rstrip(b"=").decode("ascii")


def public_jwk(public_key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    """The JWKS entry Pomerium publishes for a P-256 signing key."""
    numbers = public_key.public_numbers()
    x = _b64url_uint(numbers.x, 32)
    y = _b64url_uint(numbers.y, 32)
    # RFC 7638: only the required members, in lexicographic order, without whitespace.
    canonical = json.dumps(
        {"crv": "P-256", "kty": "EC", "x": x, "y": y}, separators=(",", ":"), sort_keys=True
    )
    kid = hashlib.sha256(canonical.encode("ascii")).hexdigest()
    return {"use": "sig", "kty": "EC", "kid": kid, "crv": "P-256", "alg": "ES256", "x": x, "y": y}


class AssertionSigner:
    """A fresh EC P-256 key per instance (a restart "rotates" it) and the tokens it signs."""

    def __init__(self, host_name: str) -> None:
        self.host_name = host_name
        self._private_key = ec.generate_private_key(ec.SECP256R1())
        self.jwk = public_jwk(self._private_key.public_key())
        self.kid = self.jwk["kid"]

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [dict(self.jwk)]}

    def claims(self, identity: DemoIdentity, sid: str | None = None) -> dict[str, Any]:
        """Pomerium's claim set for ``identity``, issued now (no ``nbf``, like Pomerium)."""
        iat = int(time.time())
        return {
            "iss": self.host_name,
            "aud": self.host_name,
            "iat": iat,
            "exp": iat + ASSERTION_LIFETIME_SECONDS,
            "jti": str(uuid.uuid4()),
            **identity.claims(),
            "sid": sid or secrets.token_urlsafe(24),
        }

    def mint(
        self,
        identity: DemoIdentity,
        *,
        jose_header: Mapping[str, Any] | None = None,
        **overrides: Any,
    ) -> str:
        """Sign an assertion for ``identity``.

        ``overrides`` replace claims (``OMIT`` removes one); when ``iat`` is overridden and
        ``exp`` is not, ``exp`` follows it. ``jose_header`` adds or replaces header fields
        (the default header is ``{"alg": "ES256", "kid": <kid>, "typ": "JWT"}``).
        """
        claims = self.claims(identity)
        if "iat" in overrides and "exp" not in overrides and overrides["iat"] is not OMIT:
            claims["exp"] = int(overrides["iat"]) + ASSERTION_LIFETIME_SECONDS
        claims.update(overrides)
        claims = {name: value for name, value in claims.items() if value is not OMIT}
        header: dict[str, Any] = {"kid": self.kid, "typ": "JWT"}
        header.update(jose_header or {})
        return jwt.encode(claims, self._private_key, algorithm="ES256", headers=header)
