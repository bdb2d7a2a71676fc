"""The dev sign-in proxy plays Pomerium's programmatic login, so `jit login` works in the demo."""

from __future__ import annotations

import http.client
import json
import re
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest

from devtools.demo.proxy import DevSignInProxy
from jitcli.sessions import Session, save_session
from tests.cli.inprocess import Background, person_environment, run_jit
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


def form_action(reply_headers: object) -> str:
    policy = reply_headers["Content-Security-Policy"]  # type: ignore[index]
    return next(d.strip() for d in policy.split(";") if d.strip().startswith("form-action"))


def test_only_the_command_lines_sign_in_page_may_send_its_form_on_to_the_callback(proxy):
    # The browser applies form-action to the redirect after the POST too: the page with the
    # command line's callback must allow that one loopback origin, and nothing else may.
    query = urlencode({"pomerium_redirect_uri": "http://127.0.0.1:45678/x7Yq"})

    cli_page = call(proxy, "GET", f"/.pomerium/sign_in?{query}")
    browser_page = call(proxy, "GET", "/.pomerium/sign_in?next=/")

    assert form_action(cli_page.headers) == "form-action 'self' http://127.0.0.1:45678"
    assert form_action(browser_page.headers) == "form-action 'self'"


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


# --- `jit login` itself (in this process) against the proxy ---------------------------------


def stored(home) -> dict:
    return json.loads((home / "jit" / "session.json").read_text())


def test_jit_login_stores_the_session_the_callback_brings_and_logout_forgets_it(proxy, tmp_path):
    login = Background("login", proxy.url, "--no-browser", home=tmp_path)
    url = login.line_starting("http")
    callback = browser_sign_in(proxy, url, "alice") if url else ""
    empty = call_url(callback.split("?")[0]) if callback else None
    signed_in = call_url(callback) if callback else None
    result = login.finish()

    assert url.startswith(f"{proxy.url}/.pomerium/sign_in?"), result.stderr
    assert empty is not None and empty[0] == 400  # a callback without a token stores nothing
    assert signed_in is not None and signed_in[0] == 200 and b"Signed in" in signed_in[1]
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Signed in to {proxy.url} as alice@example.com, until ")
    origin = f"http://127.0.0.1:{proxy.port}"
    assert stored(tmp_path)["current"] == origin
    session = stored(tmp_path)["sessions"][origin]
    claims = jwt.decode(session["token"], options={"verify_signature": False})
    assert (session["url"], claims["email"]) == (proxy.url, "alice@example.com")

    first = run_jit("logout", home=tmp_path)
    second = run_jit("logout", "--json", home=tmp_path)
    assert (first.returncode, first.stdout) == (0, f"Signed out of {proxy.url}.\n")
    assert (second.returncode, json.loads(second.stdout)) == (
        0,
        {"signed_out": False, "portals": []},
    )
    assert not (tmp_path / "jit" / "session.json").exists()


def test_jit_login_again_uses_the_stored_portal_and_gives_up_after_its_timeout(proxy, tmp_path):
    with person_environment(tmp_path):
        save_session(Session(proxy.url, "old-token"))

    result = run_jit("login", "--no-browser", "--timeout", "0.3s", home=tmp_path)

    assert result.returncode == 3
    assert f"{proxy.url}/.pomerium/sign_in?" in result.stderr
    assert result.stderr.endswith(
        "jit: No sign-in arrived before the timeout; run `jit login` again.\n"
    )
    assert stored(tmp_path)["sessions"][f"http://127.0.0.1:{proxy.port}"]["token"] == "old-token"


# --- Gap 11: only this login's callback, from this machine, completes it ---------------------


def test_the_callback_is_this_logins_own_random_address(proxy, tmp_path):
    first = Background("login", proxy.url, "--no-browser", "--timeout", "0.5s", home=tmp_path)
    first_url = first.line_starting("http")
    first.finish()
    second = Background("login", proxy.url, "--no-browser", "--timeout", "0.5s", home=tmp_path)
    second_url = second.line_starting("http")
    second.finish()

    callbacks = [
        parse_qs(urlsplit(url).query)["pomerium_redirect_uri"][0] for url in (first_url, second_url)
    ]
    paths = [urlsplit(c).path for c in callbacks]
    assert all(urlsplit(c).hostname == "127.0.0.1" for c in callbacks)
    assert paths[0] != paths[1] and all(len(p) > 40 for p in paths)  # 32 random bytes each


def test_a_callback_without_this_logins_state_is_refused_and_the_login_keeps_waiting(
    proxy, tmp_path
):
    login = Background("login", proxy.url, "--no-browser", home=tmp_path)
    url = login.line_starting("http")
    callback = browser_sign_in(proxy, url, "alice") if url else ""
    parts = urlsplit(callback)
    # Mallory's own session, sent to the right port without the state (or with another).
    mallory = proxy.mint_session(proxy.identity("bob"))
    base = f"http://127.0.0.1:{parts.port}"
    no_state = call_url(f"{base}/?pomerium_jwt={mallory}")
    wrong_state = call_url(f"{base}/{'A' * 43}?pomerium_jwt={mallory}")
    prefix = call_url(f"{base}{parts.path[:-1]}?pomerium_jwt={mallory}")
    still_waiting = login.thread.is_alive()
    alice = call_url(callback)
    result = login.finish()

    assert [no_state[0], wrong_state[0], prefix[0]] == [404, 404, 404]
    assert still_waiting
    assert alice[0] == 200
    assert result.returncode == 0, result.stderr
    assert "as alice@example.com" in result.stdout
    assert result.stderr.count("ignored a sign-in callback that does not belong to this login") == 3
    token = stored(tmp_path)["sessions"][f"http://127.0.0.1:{proxy.port}"]["token"]
    assert jwt.decode(token, options={"verify_signature": False})["email"] == "alice@example.com"


def test_a_callback_from_another_machine_is_refused_and_changes_nothing():
    # The server listens on 127.0.0.1 only, so no other machine reaches it over a network;
    # the handler refuses a peer outside loopback all the same (a real HTTP exchange over
    # a socket pair, the peer address as another machine's).
    import socket

    from jitcli.login import _Callback, _LoginServer

    server = _LoginServer(0, "s3cret-state")
    ours, theirs = socket.socketpair()
    try:
        theirs.sendall(b"GET /s3cret-state?pomerium_jwt=x.y.z HTTP/1.0\r\nHost: x\r\n\r\n")
        _Callback(ours, ("192.0.2.7", 40000), server)
        ours.close()
        answer = theirs.recv(4096)
    finally:
        theirs.close()
        server.server_close()

    assert answer.startswith(b"HTTP/1.0 403")
    assert (server.token, server.done.is_set()) == (None, False)


@pytest.mark.parametrize(
    ("portal", "code", "said"),
    [
        ("upstream", 1, "does not offer Pomerium's login API (HTTP 200)"),
        ("http://127.0.0.1:9", 1, "jit: Cannot reach http://127.0.0.1:9: ConnectionError."),
        ("ftp://jit.example.com", 2, "is not a portal URL like https://jit.example.com"),
    ],
)
def test_jit_login_refuses_what_is_not_a_pomerium_login(upstream, tmp_path, portal, code, said):
    url = upstream.url if portal == "upstream" else portal

    result = run_jit("login", url, "--no-browser", home=tmp_path)

    assert (result.returncode, result.stdout, result.stderr.count("\n")) == (code, "", 1)
    assert said in result.stderr
    assert not (tmp_path / "jit").exists()


def call_url(url: str) -> tuple[int, bytes]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        conn.request("GET", f"{parts.path or '/'}?{parts.query}")
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()
