"""`jit login` and `jit logout`: Pomerium's programmatic login with a loopback callback."""

from __future__ import annotations

import argparse
import http.server
import threading
import webbrowser
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from .core import (
    FAILED,
    NOT_SIGNED_IN,
    OK,
    USAGE,
    Session,
    emit,
    fail,
    forget_session,
    load_session,
    local,
    normalise_url,
    save_session,
    say,
)

LOGIN_PATH = "/.pomerium/api/v1/login"
CLOSE_PAGE = (
    b"<!doctype html><meta charset=utf-8><title>jit</title>"
    b"<p>Signed in. You can close this window and go back to the terminal.</p>"
)


# --- login / logout --------------------------------------------------------------------------


class _LoginServer(http.server.HTTPServer):
    """The loopback callback: Pomerium's sign-in redirects the browser here with the JWT."""

    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), _Callback)
        self.token: str | None = None
        self.done = threading.Event()


class _Callback(http.server.BaseHTTPRequestHandler):
    server: _LoginServer

    def do_GET(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        token = (query.get("pomerium_jwt") or [""])[0]
        if not token:
            self.send_response(400)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"No pomerium_jwt in this callback.\n")
            return
        self.server.token = token
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(CLOSE_PAGE)))
        self.end_headers()
        self.wfile.write(CLOSE_PAGE)
        self.server.done.set()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the query string carries the token: never log it


def cmd_login(args: argparse.Namespace) -> int:
    previous = load_session()
    chosen = args.portal or args.url or (previous.url if previous else "")
    if not chosen:
        fail("Say which portal: jit login https://jit.example.com", USAGE)
    url = normalise_url(chosen)
    server = _LoginServer(args.port)
    callback = f"http://127.0.0.1:{server.server_address[1]}/"
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
        got = server.done.wait(args.timeout)
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
    removed = forget_session()
    emit({"signed_out": removed}, args.json, "Signed out." if removed else "Not signed in.")
    return OK
