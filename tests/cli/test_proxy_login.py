"""The dev sign-in proxy plays Pomerium's programmatic login, so `jit login` works in the demo."""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest

from devtools.demo.proxy import DevSignInProxy
from tests.demo.test_proxy import HOST_NAME, call

CALLBACK = "http://localhost:45678/callback"


def login_url(proxy: DevSignInProxy, callback: str = CALLBACK) -> str:
    query = urlencode({"pomerium_redirect_uri": callback})
    reply = call(proxy, "GET", f"/.pomerium/api/v1/login?{query}")
    assert reply.status == 200, reply.body
    return reply.body.decode().strip()


def browser_sign_in(proxy: DevSignInProxy, url: str, key: str) -> str:
    """What the person's browser does: open the sign-in URL, pick ``key``; returns Location."""
    parts = urlsplit(url)
    page = call(proxy, "GET", f"{parts.path}?{parts.query}").body.decode()
    fields = dict(re.findall(r'name="(csrf_token|pomerium_redirect_uri)" value="([^"]+)"', page))
    body = urlencode({**fields, "identity": key}).replace("&amp;", "&")
    reply = call(
        proxy,
        "POST",
        "/.pomerium/sign_in",
        body=body.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert reply.status == 302, reply.body
    return reply.headers["Location"]


def test_login_api_answers_a_sign_in_url_that_redirects_to_the_callback_with_a_jwt(proxy):
    url = login_url(proxy)
    location = browser_sign_in(proxy, url, "alice")

    assert url.startswith(f"{proxy.url}/.pomerium/sign_in?")
    assert location.startswith(CALLBACK + "?pomerium_jwt=")
    token = parse_qs(urlsplit(location).query)["pomerium_jwt"][0]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (claims["email"], claims["aud"]) == (
        "alice@example.com",
        f"pomerium-programmatic:{HOST_NAME}",
    )
    assert claims["exp"] - claims["iat"] == 8 * 3600


@pytest.mark.parametrize(
    "callback",
    [
        "http://evil.example:80/cb",
        "https://localhost:1/cb",
        "http://localhost/cb",
        "javascript:x",
    ],
)
def test_only_loopback_callbacks_with_a_port_are_accepted(proxy, callback):
    query = urlencode({"pomerium_redirect_uri": callback})

    api = call(proxy, "GET", f"/.pomerium/api/v1/login?{query}")
    page = call(proxy, "GET", f"/.pomerium/sign_in?{query}")

    assert (api.status, page.status) == (400, 400)


def test_a_session_jwt_is_forwarded_as_a_fresh_assertion_without_the_header(proxy, upstream):
    token = proxy.mint_session(proxy.identity("bob"))

    reply = call(proxy, "GET", "/api/v1/pending", headers={"Authorization": f"Pomerium {token}"})

    assert reply.status == 200
    seen = upstream.seen[-1]
    assert seen.header_values("Authorization") == []
    assertion = seen.header("X-Pomerium-Jwt-Assertion")
    claims = jwt.decode(assertion, options={"verify_signature": False})
    assert (claims["email"], claims["aud"], claims["exp"] - claims["iat"]) == (
        "bob@example.com",
        HOST_NAME,
        300,
    )


@pytest.mark.parametrize("kind", ["expired", "garbage", "assertion"])
def test_a_bad_session_jwt_is_a_401_and_reaches_nothing(proxy, upstream, kind):
    bob = proxy.identity("bob")
    token = {
        "expired": proxy.mint(
            bob, aud=proxy.session_audience, iat=int(time.time()) - 4000, exp=int(time.time()) - 10
        ),
        "garbage": "not-a-jwt",
        "assertion": proxy.mint(bob),  # a route assertion is not a session token
    }[kind]

    reply = call(proxy, "GET", "/api/v1/pending", headers={"Authorization": f"Pomerium {token}"})

    assert reply.status == 401
    assert upstream.seen == []
