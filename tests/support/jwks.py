"""A real JWKS server on loopback and a token minter, playing Pomerium's signing side."""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

AUDIENCE = "portal.test"


def thumbprint_kid(public_jwk: dict[str, Any]) -> str:
    """RFC 7638 thumbprint, as Pomerium names its keys."""
    import hashlib

    members = (
        {"crv": public_jwk["crv"], "kty": "EC", "x": public_jwk["x"], "y": public_jwk["y"]}
        if public_jwk["kty"] == "EC"
        else {"e": public_jwk["e"], "kty": "RSA", "n": public_jwk["n"]}
    )
    digest = hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode())
    return digest.hexdigest()


@dataclass
class SigningKey:
    alg: str
    private: Any
    kid: str = ""
    jwk: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def generate(cls, alg: str = "ES256") -> SigningKey:
        if alg == "ES256":
            private = ec.generate_private_key(ec.SECP256R1())
            public = json.loads(ECAlgorithm.to_jwk(private.public_key()))
        else:
            private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            public = json.loads(RSAAlgorithm.to_jwk(private.public_key()))
        kid = thumbprint_kid(public)
        public.update({"kid": kid, "use": "sig", "alg": alg})
        return cls(alg=alg, private=private, kid=kid, jwk=public)


class JwksServer:
    """Serves /.well-known/pomerium/jwks.json with whatever keys are published now."""

    def __init__(self) -> None:
        self.keys: list[SigningKey] = []
        self.fetches = 0
        self.fail = False
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.fetches += 1
                if outer.fail or self.path != "/.well-known/pomerium/jwks.json":
                    self.send_response(503 if outer.fail else 404)
                    self.end_headers()
                    return
                body = json.dumps({"keys": [k.jwk for k in outer.keys]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Cache-Control", "max-age=60")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/.well-known/pomerium/jwks.json"

    def start(self) -> JwksServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def publish(self, key: SigningKey) -> SigningKey:
        self.keys.append(key)
        return key


def claims_for(
    sub: str,
    email: str,
    *,
    groups: list[str] | None = None,
    name: str = "",
    audience: str = AUDIENCE,
    lifetime: int = 300,
    iat: int | None = None,
) -> dict[str, Any]:
    now = int(time.time()) if iat is None else iat
    return {
        "iss": audience,
        "aud": audience,
        "iat": now,
        "exp": now + lifetime,
        "jti": str(uuid.uuid4()),
        "sub": sub,
        "user": sub,
        "email": email,
        "groups": groups or [],
        "name": name,
        "sid": "sid-" + sub,
    }


def mint(key: SigningKey, claims: dict[str, Any], headers: dict[str, Any] | None = None) -> str:
    return jwt.encode(
        claims, key.private, algorithm=key.alg, headers={"kid": key.kid, **(headers or {})}
    )
