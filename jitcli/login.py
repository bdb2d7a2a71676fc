"""`jit login` and `jit logout`: Pomerium's programmatic login with a loopback callback.

The callback listens on 127.0.0.1 for this one login. Its address carries a fresh random
``state`` as its path (``http://127.0.0.1:PORT/<state>``): Pomerium keeps the path of
``pomerium_redirect_uri`` when it appends ``pomerium_jwt``. A call that does not come from
this machine, or does not carry that state (compared in constant time), is refused and the
login keeps waiting: another local process or a web page cannot plant its own session.
"""

from __future__ import annotations

import argparse
import hmac
import http.server
import secrets
import threading
import webbrowser
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import requests

from .core import FAILED, NOT_SIGNED_IN, OK, USAGE, emit, fail, local, say
from .sessions import (
    Session,
    forget_session,
    is_loopback,
    load_session,
    normalise_url,
    read_store,
    save_session,
    write_store,
)

LOGIN_PATH = "/.pomerium/api/v1/login"
CLOSE_PAGE = (
    b"<!doctype html><meta charset=utf-8><title>jit</title>"
    b"<p>Signed in. You can close this window and go back to the terminal.</p>"
)


# --- login / logout --------------------------------------------------------------------------


class _LoginServer(http.server.ThreadingHTTPServer):
    """The loopback callback: Pomerium's sign-in redirects the browser here with the JWT.

    One thread per connection (and a read timeout): a connection left open by someone else
    cannot hold the browser's callback up.
    """

    daemon_threads = True

    def __init__(self, port: int, state: str) -> None:
        super().__init__(("127.0.0.1", port), _Callback)
        self.path_expected = f"/{state}".encode()
        self.token: str | None = None
        self.done = threading.Event()

    @property
    def callback(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{self.path_expected.decode()}"


class _Callback(http.server.BaseHTTPRequestHandler):
    server: _LoginServer
    timeout = 10

    def do_GET(self) -> None:
        if self.server.done.is_set():
            self._answer(410, b"This sign-in is already complete.\n")
            return
        path, _, query = self.path.partition("?")
        token = (parse_qs(query).get("pomerium_jwt") or [""])[0]
        if not is_loopback(str(self.client_address[0])):
            self._refuse(token, 403, b"Only this machine may complete this sign-in.\n")
            return
        # Constant time: the state is the one secret between jit and the browser.
        if not hmac.compare_digest(path.encode("utf-8", "replace"), self.server.path_expected):
            self._refuse(token, 404, b"This is not the sign-in jit is waiting for.\n")
            return
        if not token:
            self._answer(400, b"No pomerium_jwt in this callback.\n")
            return
        self.server.token = token
        self._answer(200, CLOSE_PAGE, "text/html; charset=utf-8")
        self.server.done.set()

    def _refuse(self, token: str, status: int, text: bytes) -> None:
        if token:  # a sign-in, not a stray favicon request: tell the person at the terminal
            say("jit: ignored a sign-in callback that does not belong to this login.")
        self._answer(status, text)

    def _answer(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the query string carries the token: never log it


def cmd_login(args: argparse.Namespace) -> int:
    previous = load_session()
    chosen = args.portal or args.url or (previous.url if previous else "")
    if not chosen:
        fail("Say which portal: jit login https://jit.example.com", USAGE)
    url = normalise_url(chosen)
    server = _LoginServer(args.port, secrets.token_urlsafe(32))
    callback = server.callback
    try:
        response = requests.get(
            url + LOGIN_PATH,
            params={"pomerium_redirect_uri": callback},
            timeout=30,
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        server.server_close()
        fail(f"Cannot reach {url}: {type(exc).__name__}.", FAILED)
    sign_in = response.text.strip()
    if response.status_code != 200 or not sign_in.startswith(("http://", "https://")):
        server.server_close()
        fail(f"{url} does not offer Pomerium's login API (HTTP {response.status_code}).", FAILED)
    say(f"Sign in in your browser:\n  {sign_in}")
    if not args.no_browser:
        webbrowser.open(sign_in)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2})
    thread.daemon = True
    thread.start()
    try:
        got = server.done.wait(args.timeout.total_seconds())
    finally:
        server.shutdown()
        server.server_close()
    if not got or not server.token:
        fail("No sign-in arrived before the timeout; run `jit login` again.", NOT_SIGNED_IN)
    session = Session(url=url, token=server.token)
    path = save_session(session)
    exp = session.claims().get("exp")
    until = datetime.fromtimestamp(exp, UTC).isoformat() if isinstance(exp, int) else None
    emit(
        {"url": url, "email": session.email, "expires_at": until, "stored_in": str(path)},
        args.json,
        f"Signed in to {url} as {session.email or 'unknown'}"
        + (f", until {local(until)}" if until else "")
        + ".",
    )
    return OK


def cmd_logout(args: argparse.Namespace) -> int:
    if args.all:
        store = read_store()
        forgotten = sorted(s.url for s in store.sessions.values())
        store.sessions.clear()
        write_store(store)
    else:
        removed = forget_session(normalise_url(args.url) if args.url else None)
        forgotten = [removed.url] if removed else []
    text = "Signed out of " + ", ".join(forgotten) + "." if forgotten else "Not signed in."
    emit({"signed_out": bool(forgotten), "portals": forgotten}, args.json, text)
    return OK
