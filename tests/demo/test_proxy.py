"""The dev sign-in proxy against a real upstream HTTP server that echoes what it received.

No Django database is involved: the proxy is plain HTTP, and these tests talk to it over
loopback sockets with http.client (which, like a browser's fetch with redirect: manual,
never follows redirects).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import socket
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest

from devtools.demo.proxy import OMIT, DevSignInProxy, main, safe_next

HOST_NAME = "jit.test"


@dataclass
class Seen:
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes

    def header_values(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def header(self, name: str) -> str:
        values = self.header_values(name)
        assert len(values) == 1, f"{name}: {values}"
        return values[0]


@dataclass
class Upstream:
    url: str
    seen: list[Seen] = field(default_factory=list)


class _EchoHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            body = b""
            while size := int(self.rfile.readline().strip(), 16):
                body += self.rfile.read(size)
                self.rfile.readline()
            self.rfile.readline()
            return body
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def _handle(self) -> None:
        seen = Seen(self.command, self.path, list(self.headers.items()), self._read_body())
        self.server.seen.append(seen)  # type: ignore[attr-defined]
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        payload = json.dumps({"path": seen.path, "body": seen.body.hex()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        # Two cookies, as Django sends sessionid and csrftoken together.
        self.send_header("Set-Cookie", "sessionid=abc; HttpOnly; Path=/")
        self.send_header("Set-Cookie", "csrftoken=def; Path=/")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = _handle

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoHandler)
    result = Upstream(url=f"http://127.0.0.1:{server.server_address[1]}")
    server.seen = result.seen  # type: ignore[attr-defined]
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield result
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxy(upstream: Upstream) -> Iterator[DevSignInProxy]:
    with DevSignInProxy(upstream.url, host_name=HOST_NAME) as running:
        yield running


@dataclass
class Reply:
    status: int
    headers: Message
    body: bytes


def call(
    proxy: DevSignInProxy,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    cookie: str = "",
) -> Reply:
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    try:
        all_headers = dict(headers or {})
        if cookie:
            all_headers["Cookie"] = cookie
        conn.request(method, path, body=body, headers=all_headers)
        response = conn.getresponse()
        return Reply(response.status, response.msg, response.read())
    finally:
        conn.close()


def csrf_token(proxy: DevSignInProxy) -> str:
    page = call(proxy, "GET", "/.pomerium/sign_in").body.decode()
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


def sign_in(
    proxy: DevSignInProxy, key: str, next_path: str = "/", token: str | None = None
) -> Reply:
    form = {"identity": key, "next": next_path}
    if token is not None:
        form["csrf_token"] = token
    body = "&".join(f"{k}={urllib.request.quote(v, safe='')}" for k, v in form.items())
    return call(
        proxy,
        "POST",
        "/.pomerium/sign_in",
        body=body.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )


def session_cookie(reply: Reply) -> str:
    """The Cookie header a browser would send back after this reply."""
    return "; ".join(c.split(";", 1)[0] for c in reply.headers.get_all("Set-Cookie") or [])


def signed_in(proxy: DevSignInProxy, key: str = "alice") -> str:
    reply = sign_in(proxy, key, token=csrf_token(proxy))
    assert reply.status == 302
    return session_cookie(reply)


def fetch_jwks(proxy: DevSignInProxy) -> tuple[dict[str, Any], Message]:
    with urllib.request.urlopen(proxy.jwks_url, timeout=5) as response:
        return json.load(response), response.headers


def verify(proxy: DevSignInProxy, token: str) -> dict[str, Any]:
    keys, _ = fetch_jwks(proxy)
    kid = jwt.get_unverified_header(token)["kid"]
    jwk = next(k for k in keys["keys"] if k["kid"] == kid)
    return jwt.decode(
        token,
        key=jwt.PyJWK(jwk).key,
        algorithms=["ES256"],
        audience=HOST_NAME,
        issuer=HOST_NAME,
        options={"require": ["exp", "iat", "iss", "aud", "sub"]},
    )


# --- identity and sign-in ----------------------------------------------------------------


def test_request_without_identity_redirects_to_sign_in(proxy, upstream):
    reply = call(proxy, "GET", "/requests/?resource=3")

    assert reply.status == 302
    assert reply.headers["Location"] == "/.pomerium/sign_in?next=%2Frequests%2F%3Fresource%3D3"
    assert upstream.seen == []


def test_unknown_identity_cookie_counts_as_signed_out(proxy, upstream):
    reply = call(proxy, "GET", "/", cookie="_demo_identity=mallory")

    assert reply.status == 302
    assert reply.headers["Location"].startswith("/.pomerium/sign_in")
    assert upstream.seen == []


def test_sign_in_page_offers_every_identity_with_the_form_token(proxy):
    reply = call(proxy, "GET", "/.pomerium/sign_in?next=/admin/")
    page = reply.body.decode()

    assert reply.status == 200
    assert "NOT FOR PRODUCTION" in page
    for key in ("alice", "bob", "erin", "carol", "dave", "admin"):
        assert f'name="identity" value="{key}"' in page
    assert page.count(f'name="csrf_token" value="{proxy.csrf_token}"') == 6
    assert page.count('name="next" value="/admin/"') == 6
    assert "script-src" not in reply.headers["Content-Security-Policy"]  # no script at all


def test_sign_in_sets_http_only_lax_cookie_and_redirects_to_next(proxy):
    reply = sign_in(proxy, "bob", next_path="/admin/?q=1", token=csrf_token(proxy))

    assert reply.status == 302
    assert reply.headers["Location"] == "/admin/?q=1"
    cookies = reply.headers.get_all("Set-Cookie")
    identity = next(c for c in cookies if c.startswith("_demo_identity="))
    assert identity.startswith("_demo_identity=bob;")
    assert "HttpOnly" in identity
    assert "SameSite=Lax" in identity


@pytest.mark.parametrize("token", [None, "", "not-the-token"])
def test_sign_in_without_the_anti_csrf_token_is_refused(proxy, token):
    reply = sign_in(proxy, "admin", token=token)

    assert reply.status == 403
    assert reply.headers.get_all("Set-Cookie") is None


def test_sign_in_token_from_another_proxy_process_is_refused(proxy, upstream):
    with DevSignInProxy(upstream.url) as other:
        reply = sign_in(proxy, "admin", token=other.csrf_token)

    assert reply.status == 403


@pytest.mark.parametrize(
    "next_path",
    ["//evil.example/x", "https://evil.example/", "/\\evil.example", "evil", "/ok\r\nX-A: b"],
)
def test_sign_in_never_redirects_off_site(proxy, next_path):
    reply = sign_in(proxy, "alice", next_path=next_path, token=csrf_token(proxy))

    assert reply.status == 302
    assert reply.headers["Location"] == "/"


def test_safe_next_keeps_local_paths_with_queries():
    assert safe_next("/requests/?a=1&b=%2F") == "/requests/?a=1&b=%2F"
    assert safe_next("//evil") == "/"
    assert safe_next(None) == "/"


def test_sign_out_clears_the_identity_and_returns_to_sign_in(proxy):
    cookie = signed_in(proxy, "carol")

    reply = call(proxy, "GET", "/.pomerium/sign_out", cookie=cookie)

    assert reply.status == 302
    assert reply.headers["Location"] == "/.pomerium/sign_in"
    cleared = [c for c in reply.headers.get_all("Set-Cookie") if c.startswith("_demo_identity=;")]
    assert cleared
    assert "Max-Age=0" in cleared[0]


def test_user_endpoint_returns_the_signed_in_identity(proxy):
    cookie = signed_in(proxy, "dave")

    reply = call(proxy, "GET", "/.pomerium/user", cookie=cookie)

    assert reply.status == 200
    assert json.loads(reply.body) == {
        "sub": "demo|dave",
        "user": "demo|dave",
        "email": "dave@example.com",
        "groups": ["engineering", "oncall"],
        "name": "Dave On-call",
    }
    assert call(proxy, "GET", "/.pomerium/user").status == 401


# --- the assertion -----------------------------------------------------------------------


def test_jwks_matches_pomeriums_shape_and_rfc7638_kid(proxy):
    keys, headers = fetch_jwks(proxy)

    assert headers["Cache-Control"] == "max-age=60"
    [key] = keys["keys"]
    assert set(key) == {"use", "kty", "kid", "crv", "alg", "x", "y"}
    assert (key["use"], key["kty"], key["crv"], key["alg"]) == ("sig", "EC", "P-256", "ES256")
    canonical = json.dumps(
        {"crv": key["crv"], "kty": key["kty"], "x": key["x"], "y": key["y"]},
        separators=(",", ":"),
    )
    assert key["kid"] == hashlib.sha256(canonical.encode()).hexdigest()


def test_forwarded_request_carries_a_verifiable_pomerium_assertion(proxy, upstream):
    cookie = signed_in(proxy, "bob")

    reply = call(proxy, "GET", "/admin/?x=1", cookie=cookie)

    assert reply.status == 200
    [seen] = upstream.seen
    assert seen.path == "/admin/?x=1"
    token = seen.header("X-Pomerium-Jwt-Assertion")
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "ES256", "kid": proxy.kid, "typ": "JWT"}
    claims = verify(proxy, token)
    assert claims["iss"] == claims["aud"] == HOST_NAME
    assert claims["exp"] - claims["iat"] == 300
    assert uuid.UUID(claims["jti"]).version == 4
    assert claims["sub"] == claims["user"] == "demo|bob"
    assert claims["email"] == "bob@example.com"
    assert claims["groups"] == ["approvers", "sre"]
    assert claims["name"] == "Bob Approver"
    assert claims["sid"]
    assert "nbf" not in claims


def test_each_request_gets_a_fresh_jti_within_one_session(proxy, upstream):
    cookie = signed_in(proxy, "alice")
    call(proxy, "GET", "/one", cookie=cookie)
    call(proxy, "GET", "/two", cookie=cookie)
    again = signed_in(proxy, "alice")
    call(proxy, "GET", "/three", cookie=again)

    first, second, third = (
        verify(proxy, s.header("X-Pomerium-Jwt-Assertion")) for s in upstream.seen
    )
    assert first["jti"] != second["jti"]
    assert first["sid"] == second["sid"]  # same cookie, same session
    assert third["sid"] != first["sid"]  # signing in again starts a new one


def test_client_sent_pomerium_headers_are_replaced(proxy, upstream):
    cookie = signed_in(proxy, "alice")
    forged = proxy.mint("admin")  # even a validly signed token for someone else

    call(
        proxy,
        "GET",
        "/",
        cookie=cookie,
        headers={"X-Pomerium-Jwt-Assertion": forged, "X-Pomerium-Claim-Email": "admin@example.com"},
    )

    [seen] = upstream.seen
    token = seen.header("X-Pomerium-Jwt-Assertion")
    assert token != forged
    assert verify(proxy, token)["email"] == "alice@example.com"
    assert seen.header_values("X-Pomerium-Claim-Email") == []


def test_mint_applies_overrides_and_omissions(proxy):
    token = proxy.mint("erin", iat=1_000, email=OMIT, groups=[])

    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iat"] == 1_000
    assert claims["exp"] == 1_300
    assert "email" not in claims
    assert claims["groups"] == []
    assert claims["sub"] == "demo|erin"


# --- forwarding ------------------------------------------------------------------------------


def test_forwarding_headers_are_set_by_the_proxy_and_host_is_preserved(proxy, upstream):
    cookie = signed_in(proxy, "alice")

    call(
        proxy,
        "GET",
        "/",
        cookie=cookie + "; sessionid=s1",
        headers={
            "Host": "localhost:8000",
            "X-Forwarded-For": "203.0.113.9",
            "X-Forwarded-Proto": "https",
            "Connection": "keep-alive, X-Hop",
            "X-Hop": "secret",
            "Keep-Alive": "timeout=5",
            "Accept-Language": "de",
        },
    )

    [seen] = upstream.seen
    assert seen.header("Host") == "localhost:8000"
    assert seen.header("X-Forwarded-Host") == "localhost:8000"
    assert seen.header("X-Forwarded-For") == "127.0.0.1"
    assert seen.header("X-Forwarded-Proto") == "http"
    assert seen.header("Accept-Language") == "de"
    assert seen.header_values("X-Hop") == []
    assert seen.header_values("Keep-Alive") == []
    # The portal gets its own cookies, never the proxy's.
    assert seen.header("Cookie") == "sessionid=s1"


def test_method_and_binary_body_are_relayed(proxy, upstream):
    cookie = signed_in(proxy, "alice")
    body = bytes(range(256)) * 300  # larger than one read, with NULs and high bytes

    reply = call(proxy, "PUT", "/api/thing?v=2", cookie=cookie, body=body)

    assert reply.status == 200
    [seen] = upstream.seen
    assert (seen.method, seen.path, seen.body) == ("PUT", "/api/thing?v=2", body)
    assert json.loads(reply.body)["body"] == body.hex()


def test_chunked_request_body_is_relayed(proxy, upstream):
    cookie = signed_in(proxy, "alice")
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    conn.request(
        "POST",
        "/upload",
        body=iter([b"first,", b"second"]),
        headers={"Cookie": cookie},
        encode_chunked=True,
    )
    reply = conn.getresponse()
    reply.read()
    conn.close()

    assert reply.status == 200
    assert upstream.seen[0].body == b"first,second"


def test_every_set_cookie_header_is_relayed(proxy):
    cookie = signed_in(proxy, "alice")

    reply = call(proxy, "GET", "/", cookie=cookie)

    assert reply.headers.get_all("Set-Cookie") == [
        "sessionid=abc; HttpOnly; Path=/",
        "csrftoken=def; Path=/",
    ]


def test_upstream_redirects_are_relayed_not_followed(proxy, upstream):
    cookie = signed_in(proxy, "alice")

    reply = call(proxy, "GET", "/redirect", cookie=cookie)

    assert reply.status == 302
    assert reply.headers["Location"] == "/elsewhere"
    assert [s.path for s in upstream.seen] == ["/redirect"]


def test_upstream_down_gives_a_502_page(upstream):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    with DevSignInProxy(f"http://127.0.0.1:{closed_port}") as proxy:
        cookie = signed_in(proxy, "alice")
        reply = call(proxy, "GET", "/", cookie=cookie)

    assert reply.status == 502
    assert b"The portal is not up yet" in reply.body


def test_pomerium_paths_are_never_forwarded(proxy, upstream):
    cookie = signed_in(proxy, "alice")

    reply = call(proxy, "GET", "/.pomerium/anything", cookie=cookie)

    assert reply.status == 404
    assert upstream.seen == []


# --- binding -------------------------------------------------------------------------------


# The addresses are what must be refused; nothing binds to them.
@pytest.mark.parametrize(
    "host",
    ["0.0.0.0", "192.0.2.10", "::", "::1", "example.com"],  # noqa: S104
)
def test_binding_anywhere_but_loopback_is_refused(upstream, host):
    with pytest.raises(ValueError, match=r"127\.0\.0\.1 only"):
        DevSignInProxy(upstream.url, host=host)


def test_cli_refuses_a_public_bind_address(capsys):
    code = main(["--bind", "0.0.0.0", "--port", "0"])  # noqa: S104 - must be refused

    assert code == 2
    assert "127.0.0.1 only" in capsys.readouterr().err


def test_start_prints_the_not_for_production_banner(upstream, capsys):
    proxy = DevSignInProxy(upstream.url)
    proxy.start()
    proxy.stop()

    assert "DEV SIGN-IN PROXY — NOT FOR PRODUCTION — plays Pomerium for the demo" in (
        capsys.readouterr().out
    )
