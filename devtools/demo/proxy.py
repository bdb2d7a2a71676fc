"""The dev sign-in proxy: plays Pomerium in front of the portal, for the demo only.

It offers a page to pick a demo identity, then forwards every request to the portal
with a freshly minted ES256 ``X-Pomerium-Jwt-Assertion`` carrying Pomerium's claims
(iss = aud = the route host, exp = iat + 300, jti, sub/user, email, groups, name, sid)
and serves the matching JWKS at ``/.well-known/pomerium/jwks.json``. The portal verifies
these assertions with its production code path; there is no bypass in the portal.

It also plays Pomerium's programmatic login, so ``jit login`` works against the demo:
``GET /.pomerium/api/v1/login?pomerium_redirect_uri=http://localhost:PORT/...`` answers
with a sign-in URL (text); after picking an identity there, the browser is redirected to
that loopback callback with ``?pomerium_jwt=<session JWT>``. A request carrying
``Authorization: Pomerium <session JWT>`` is then forwarded like a browser's, with a fresh
assertion for that identity (and without the Authorization header); an invalid or
expired session JWT gets a 401. The session JWT is signed with the proxy's key but for
another audience, so the portal never accepts it as an assertion.

Anyone who can reach this proxy can become anyone, so it binds to 127.0.0.1 only and
refuses any other address.

    python -m devtools.demo.proxy --port 8000 --upstream http://127.0.0.1:8001 --host-name localhost
"""

from __future__ import annotations

import argparse
import hmac
import html
import http.client
import ipaddress
import json
import logging
import re
import secrets
import signal
import sys
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import jwt

from devtools.demo import pages
from devtools.demo.forwarding import (
    CHUNK_BYTES,
    LAST_CHUNK,
    PROXY_COOKIE_PREFIX,
    chunk_frame,
    connection_tokens,
    content_length,
    is_hop_by_hop,
    parse_cookies,
    request_body,
    upstream_headers,
)
from devtools.demo.identities import DEMO_IDENTITIES, DemoIdentity
from devtools.demo.pages import BANNER, SIGN_IN_PATH, SIGN_OUT_PATH
from devtools.demo.signing import OMIT, AssertionSigner

__all__ = ["BANNER", "OMIT", "DevSignInProxy", "main", "safe_next"]

logger = logging.getLogger("devtools.demo.proxy")

JWKS_PATH = "/.well-known/pomerium/jwks.json"
USER_PATH = "/.pomerium/user"
LOGIN_API_PATH = "/.pomerium/api/v1/login"
# A programmatic session lasts as long as a portal session by default (8 hours).
PROGRAMMATIC_SESSION_SECONDS = 8 * 3600
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})
IDENTITY_COOKIE = PROXY_COOKIE_PREFIX + "identity"
SESSION_COOKIE = PROXY_COOKIE_PREFIX + "sid"
UPSTREAM_TIMEOUT_SECONDS = 120.0
MAX_FORM_BYTES = 16 * 1024
_SID_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def _require_loopback(host: str) -> None:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is None or address.version != 4 or not address.is_loopback:
        raise ValueError(
            f"the dev sign-in proxy binds to 127.0.0.1 only (got {host!r}): it lets anyone "
            "who reaches it sign in as anyone"
        )


def safe_next(value: str | None) -> str:
    """Return ``value`` if it is a local path, else ``/`` (no open redirects)."""
    if not value or not value.startswith("/") or value.startswith("//"):
        return "/"
    # Browsers read "/\evil.com" as "//evil.com"; control characters can split headers.
    if "\\" in value or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        return "/"
    return value


def loopback_callback(value: str | None) -> str | None:
    """``value`` if it is an ``http://`` URL on this machine (a CLI's callback), else None.

    Only loopback: a session JWT must never be sent to another host.
    """
    if not value or len(value) > 512 or any(ord(ch) < 0x21 for ch in value):
        return None
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme != "http" or parts.hostname not in _LOOPBACK_HOSTS or port is None:
        return None
    if parts.username or parts.password or parts.fragment:
        return None
    return value


def callback_origin(callback: str) -> str:
    """``scheme://host:port`` of a callback ``loopback_callback`` accepted (for the CSP)."""
    parts = urlsplit(callback)
    host = parts.hostname or ""
    return f"{parts.scheme}://{f'[{host}]' if ':' in host else host}:{parts.port}"


def with_query(url: str, **params: str) -> str:
    return url + ("&" if urlsplit(url).query else "?") + urlencode(params)


class DevSignInProxy:
    """A loopback-only stand-in for Pomerium in front of ``upstream``.

    ``start()`` serves in a background thread; ``url`` and ``jwks_url`` are valid after
    it. ``mint()`` signs an assertion the same way forwarded requests get one.
    """

    def __init__(
        self,
        upstream: str,
        host: str = "127.0.0.1",
        port: int = 0,
        host_name: str = "localhost",
        identities: tuple[DemoIdentity, ...] = DEMO_IDENTITIES,
    ) -> None:
        _require_loopback(host)
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname or parts.path not in ("", "/"):
            raise ValueError(f"upstream must look like http://127.0.0.1:8001 (got {upstream!r})")
        self.upstream = upstream
        self.upstream_host = parts.hostname
        self.upstream_port = parts.port or 80
        self.host = host
        self.host_name = host_name
        self.identities = {identity.key: identity for identity in identities}
        self.signer = AssertionSigner(host_name)
        self.kid = self.signer.kid
        # Per process: a sign-in form from another run (or another site) is refused.
        self.csrf_token = secrets.token_urlsafe(32)
        self._server = ThreadingHTTPServer((host, port), _ProxyHandler)
        self._server.daemon_threads = True
        self._server.proxy = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def jwks_url(self) -> str:
        return self.url + JWKS_PATH

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return self.signer.jwks()

    def start(self, *, banner: bool = True) -> DevSignInProxy:
        if banner:
            line = "!" * (len(BANNER) + 8)
            # The banner is the point: whoever starts this must see it is not Pomerium.
            sys.stdout.write(
                f"\n{line}\n!!! {BANNER} !!!\n{line}\n"
                f"    listening on {self.url}  ->  {self.upstream}\n"
                f"    assertions for host {self.host_name!r}, kid {self.kid}\n\n"
            )
            sys.stdout.flush()
        self._thread = threading.Thread(
            # A short poll interval makes stop() quick; the loop is idle otherwise.
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="dev-sign-in-proxy",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> DevSignInProxy:
        return self.start(banner=False)

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def identity(self, key: str | None) -> DemoIdentity | None:
        return self.identities.get(key) if key else None

    @property
    def session_audience(self) -> str:
        # Not the route host: the portal must refuse a session JWT used as an assertion.
        return f"pomerium-programmatic:{self.host_name}"

    def mint_session(self, identity: DemoIdentity, *, lifetime: int | None = None) -> str:
        """A programmatic-login session JWT for ``identity`` (what ``pomerium_jwt`` carries)."""
        seconds = PROGRAMMATIC_SESSION_SECONDS if lifetime is None else lifetime
        now = int(time.time())
        return self.mint(
            identity,
            aud=self.session_audience,
            iat=now,
            exp=now + seconds,
            sid=secrets.token_urlsafe(24),
        )

    def session_identity(self, token: str) -> DemoIdentity | None:
        """The identity a valid, unexpired session JWT names; None for anything else."""
        try:
            claims = jwt.decode(
                token,
                jwt.PyJWK(dict(self.signer.jwk)).key,
                algorithms=["ES256"],
                audience=self.session_audience,
                issuer=self.host_name,
                options={"require": ["exp", "iat", "sub"]},
            )
        except jwt.PyJWTError:
            return None
        for identity in self.identities.values():
            if identity.sub == claims.get("sub"):
                return identity
        return None

    def mint(
        self,
        identity_key: str | DemoIdentity,
        *,
        jose_header: Mapping[str, Any] | None = None,
        **overrides: Any,
    ) -> str:
        """Sign an assertion for a demo identity, exactly as forwarded requests get one.

        ``overrides`` replace claims (``OMIT`` removes one; ``iat`` alone moves ``exp``
        with it); ``jose_header`` adds or replaces JOSE header fields, e.g. a bogus ``kid``.
        Raises ``KeyError`` for an unknown identity key.
        """
        identity = (
            identity_key
            if isinstance(identity_key, DemoIdentity)
            else self.identities[identity_key]
        )
        return self.signer.mint(identity, jose_header=jose_header, **overrides)


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "DevSignInProxy"

    def version_string(self) -> str:
        return self.server_version

    @property
    def proxy(self) -> DevSignInProxy:
        return self.server.proxy  # type: ignore[attr-defined]

    # --- dispatch ----------------------------------------------------------------------

    def _dispatch(self) -> None:
        if not self.path.startswith("/"):
            # Absolute-form targets would make this a forward proxy; it is not one.
            self._send_text(400, "Bad request target\n")
            return
        # The request target's path, taken literally ("//x" is a path here, not a host).
        path = self.path.partition("?")[0]
        if path == JWKS_PATH and self.command in ("GET", "HEAD"):
            self._send_json(200, self.proxy.jwks(), {"Cache-Control": "max-age=60"})
        elif path == SIGN_IN_PATH and self.command in ("GET", "HEAD"):
            self._sign_in_page()
        elif path == SIGN_IN_PATH and self.command == "POST":
            self._sign_in()
        elif path == SIGN_OUT_PATH and self.command in ("GET", "POST"):
            self._sign_out()
        elif path == USER_PATH and self.command in ("GET", "HEAD"):
            self._user()
        elif path == LOGIN_API_PATH and self.command in ("GET", "HEAD"):
            self._programmatic_login()
        elif path.startswith(("/.pomerium/", "/.well-known/pomerium/")):
            # Pomerium owns these prefixes; they never reach the app.
            self._send_text(404, "Not found\n")
        else:
            self._forward()

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        # Request lines only: headers carry assertions and cookies.
        logger.info("%s %s", self.address_string(), format % args)

    # --- identity ----------------------------------------------------------------------

    def _cookies(self) -> list[tuple[str, str]]:
        return parse_cookies(self.headers.get_all("Cookie") or [])

    def _cookie(self, name: str) -> str | None:
        for cookie_name, value in self._cookies():
            if cookie_name == name:
                return value
        return None

    def _current(self) -> tuple[DemoIdentity | None, str | None]:
        identity = self.proxy.identity(self._cookie(IDENTITY_COOKIE))
        sid = self._cookie(SESSION_COOKIE)
        return identity, sid if sid and _SID_RE.match(sid) else None

    def _sign_in_page(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        callback_param = next(iter(query.get("pomerium_redirect_uri") or []), None)
        if callback_param is not None:
            callback = loopback_callback(callback_param)
            if callback is None:
                self._send_html(400, pages.refused_page("That callback is not on this machine."))
                return
            # The chosen identity's form posts here and is redirected to the callback: the
            # browser checks form-action against that redirect too, so this page (and only
            # this page) also allows the one loopback origin the command line listens on.
            self._send_html(
                200, self._programmatic_page(callback), form_action=callback_origin(callback)
            )
            return
        current, _ = self._current()
        page = pages.sign_in_page(
            self.proxy.identities.values(),
            csrf_token=self.proxy.csrf_token,
            next_path=safe_next((query.get("next") or ["/"])[0]),
            current=current,
        )
        self._send_html(200, page)

    def _sign_in(self) -> None:
        length = content_length(self.headers)
        if length is None or length > MAX_FORM_BYTES:
            self.close_connection = True
            self._send_text(413, "Sign-in form too large\n")
            return
        form = parse_qs(self.rfile.read(length).decode("utf-8", "replace"))
        token = (form.get("csrf_token") or [""])[0]
        if not hmac.compare_digest(token.encode(), self.proxy.csrf_token.encode()):
            self._send_html(403, pages.refused_page("Missing or stale form token."))
            return
        identity = self.proxy.identity((form.get("identity") or [""])[0])
        if identity is None:
            self._send_html(400, pages.refused_page("Unknown identity."))
            return
        if "pomerium_redirect_uri" in form:
            callback = loopback_callback(form["pomerium_redirect_uri"][0])
            if callback is None:
                self._send_html(400, pages.refused_page("That callback is not on this machine."))
                return
            logger.info("programmatic sign-in as %s (%s)", identity.key, identity.email)
            self._redirect(with_query(callback, pomerium_jwt=self.proxy.mint_session(identity)))
            return
        sid = secrets.token_urlsafe(24)
        logger.info("signed in as %s (%s)", identity.key, identity.email)
        self._redirect(
            safe_next((form.get("next") or ["/"])[0]),
            cookies=[
                _cookie_header(IDENTITY_COOKIE, identity.key),
                _cookie_header(SESSION_COOKIE, sid),
            ],
        )

    def _sign_out(self) -> None:
        # A form body, if any, is not needed; closing avoids reading it.
        self.close_connection = self.command == "POST"
        self._redirect(
            SIGN_IN_PATH,
            cookies=[
                _cookie_header(IDENTITY_COOKIE, "", expire=True),
                _cookie_header(SESSION_COOKIE, "", expire=True),
            ],
        )

    def _user(self) -> None:
        identity, _ = self._current()
        if identity is None:
            self._send_json(401, {"error": "not signed in"})
        else:
            self._send_json(200, identity.claims())

    def _programmatic_login(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        callback = loopback_callback(next(iter(query.get("pomerium_redirect_uri") or []), None))
        if callback is None:
            self._send_text(
                400, "pomerium_redirect_uri must be an http:// URL on localhost with a port\n"
            )
            return
        host = self.headers.get("Host") or ""
        base = f"http://{host}" if host in self._own_hosts() else self.proxy.url
        self._send_text(200, with_query(base + SIGN_IN_PATH, pomerium_redirect_uri=callback))

    def _own_hosts(self) -> set[str]:
        port = self.proxy.port
        return {f"{self.proxy.host_name}:{port}", f"127.0.0.1:{port}", f"localhost:{port}"}

    def _programmatic_page(self, callback: str) -> str:
        forms = []
        token, target = html.escape(self.proxy.csrf_token), html.escape(callback)
        for identity in self.proxy.identities.values():
            forms.append(
                f'<form class="who" method="post" action="{SIGN_IN_PATH}">'
                f"<div><strong>{html.escape(identity.name)}</strong> "
                f"&lt;{html.escape(identity.email)}&gt;</div>"
                f'<input type="hidden" name="csrf_token" value="{token}">'
                f'<input type="hidden" name="identity" value="{html.escape(identity.key)}">'
                f'<input type="hidden" name="pomerium_redirect_uri" value="{target}">'
                f'<button type="submit" data-identity="{html.escape(identity.key)}">'
                f"Sign in as {html.escape(identity.name.split()[0])}</button></form>"
            )
        intro = (
            "<p>A command line on this machine asks to sign in; after you pick who you are, "
            f"it receives a session token at <code>{html.escape(callback)}</code>.</p>"
        )
        return pages.page("Sign in from the command line", intro + "\n".join(forms))

    def _programmatic_identity(self) -> tuple[bool, DemoIdentity | None]:
        """(whether ``Authorization: Pomerium`` was sent, the identity it names if valid)."""
        value = self.headers.get("Authorization") or ""
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "pomerium":
            return False, None
        return True, self.proxy.session_identity(token.strip())

    # --- forwarding --------------------------------------------------------------------

    def _forward(self) -> None:
        sent, programmatic = self._programmatic_identity()
        if sent and programmatic is None:
            self.close_connection = True
            self._send_text(401, "The Pomerium session JWT is invalid or expired; sign in again.\n")
            return
        identity, sid = (programmatic, None) if programmatic else self._current()
        if identity is None:
            self.close_connection = True  # the request body, if any, is left unread
            self._redirect(f"{SIGN_IN_PATH}?next={quote(self.path, safe='')}")
            return
        if sid is None:
            # An identity cookie from before the session cookie existed: give it a session.
            sid = secrets.token_urlsafe(24)
        try:
            body, chunked = request_body(self.headers, self.rfile)
        except ValueError:
            self.close_connection = True
            self._send_text(400, "Bad request body framing\n")
            return
        conn = http.client.HTTPConnection(
            self.proxy.upstream_host, self.proxy.upstream_port, timeout=UPSTREAM_TIMEOUT_SECONDS
        )
        try:
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            headers = upstream_headers(
                self.headers,
                client_ip=self.client_address[0],
                fallback_host=f"{self.proxy.host_name}:{self.proxy.port}",
                assertion=self.proxy.mint(identity, sid=sid),
            )
            if sent:
                # Pomerium consumes its own Authorization header; the app sees the assertion.
                headers = [(n, v) for n, v in headers if n.lower() != "authorization"]
            for name, value in headers:
                conn.putheader(name, value)
            if chunked:
                conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            if body is not None:
                for chunk in body:
                    conn.send(chunk_frame(chunk) if chunked else chunk)
                if chunked:
                    conn.send(LAST_CHUNK)
            response = conn.getresponse()
        except ValueError:
            # Malformed chunk framing from the client; the upstream request is abandoned.
            conn.close()
            self.close_connection = True
            self._send_text(400, "Bad request body framing\n")
            return
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            logger.warning("upstream %s unavailable: %s", self.proxy.upstream, exc)
            self.close_connection = True
            self._send_html(502, pages.portal_down_page(self.proxy.upstream), {"Retry-After": "2"})
            return
        try:
            self._relay(response)
        except (BrokenPipeError, ConnectionResetError):
            # The browser went away mid-response; nothing left to tell it.
            self.close_connection = True
        finally:
            conn.close()

    def _relay(self, response: http.client.HTTPResponse) -> None:
        self.log_request(response.status)
        # Not send_response(): the upstream's own Server and Date headers are relayed.
        self.send_response_only(response.status, response.reason)
        tokens = connection_tokens(response.msg)
        has_length = False
        for name, value in response.msg.items():  # items() keeps every Set-Cookie
            if is_hop_by_hop(name, tokens):
                continue
            has_length = has_length or name.lower() == "content-length"
            self.send_header(name, value)
        no_body = self.command == "HEAD" or response.status in (204, 304) or response.status < 200
        chunked = not no_body and not has_length
        if chunked:
            # The upstream streamed without a length; keep streaming to the client.
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if no_body:
            return
        while chunk := response.read(CHUNK_BYTES):
            self.wfile.write(chunk_frame(chunk) if chunked else chunk)
        if chunked:
            self.wfile.write(LAST_CHUNK)

    # --- small responses ---------------------------------------------------------------

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: Mapping[str, str] | None = None,
        cookies: list[str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        # The proxy's own answers are per-user or short-lived; the JWKS sets its own.
        for name, value in {"Cache-Control": "no-store", **(headers or {})}.items():
            self.send_header(name, value)
        for cookie in cookies or []:
            self.send_header("Set-Cookie", cookie)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_text(self, status: int, text: str) -> None:
        self._send(status, text.encode(), "text/plain; charset=utf-8")

    def _send_json(
        self, status: int, data: object, headers: Mapping[str, str] | None = None
    ) -> None:
        self._send(status, json.dumps(data).encode(), "application/json", headers)

    def _send_html(
        self,
        status: int,
        page: str,
        headers: Mapping[str, str] | None = None,
        *,
        form_action: str = "",
    ) -> None:
        targets = f"'self' {form_action}" if form_action else "'self'"
        security = {
            "Content-Security-Policy": (
                f"default-src 'none'; style-src 'unsafe-inline'; form-action {targets}; "
                "frame-ancestors 'none'"
            ),
            "X-Frame-Options": "DENY",
            **(headers or {}),
        }
        self._send(status, page.encode(), "text/html; charset=utf-8", security)

    def _redirect(self, location: str, cookies: list[str] | None = None) -> None:
        self._send(302, b"", "text/plain; charset=utf-8", {"Location": location}, cookies)


def _cookie_header(name: str, value: str, *, expire: bool = False) -> str:
    cookie = f"{name}={value}; Path=/; HttpOnly; SameSite=Lax"
    return cookie + "; Max-Age=0" if expire else cookie


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.demo.proxy", description=BANNER)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--bind", default="127.0.0.1", help="loopback only; anything else fails")
    parser.add_argument("--upstream", default="http://127.0.0.1:8001")
    parser.add_argument("--host-name", default="localhost", help="iss and aud of the assertions")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        proxy = DevSignInProxy(args.upstream, args.bind, args.port, args.host_name)
    except (ValueError, OSError) as exc:
        sys.stderr.write(f"dev sign-in proxy: {exc}\n")
        return 2
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    proxy.start()
    stopping.wait()
    proxy.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
