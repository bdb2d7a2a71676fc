"""A real HTTP server that plays Slack for the portal, written from Slack's published docs.

Web API (``/api/<method>``), as Slack documents it:

* ``chat.postMessage``, ``chat.update``, ``views.open``: POST, form-encoded or JSON;
  ``users.info``: GET or form POST (its page lists no JSON). ``auth.test`` too.
* The token comes as ``Authorization: Bearer`` (or a ``token`` form/query argument):
  missing → ``not_authed``, wrong → ``invalid_auth``; a method needs its scope
  (``missing_scope`` with ``needed`` and ``provided``).
* Refusals are HTTP 200 with ``{"ok": false, "error": "..."}``; over a rate limit, HTTP 429
  with ``Retry-After`` and ``{"ok": false, "error": "ratelimited"}``.
* Arguments are checked against the written contract (``contract.json``): an unknown or
  malformed argument is ``invalid_arguments``, bad Block Kit is ``invalid_blocks``.

Interactivity, as Slack sends it: a click (``/_sim/click``, or the page at ``/``) becomes a
``block_actions`` payload, a dialog's submit (``/_sim/submit``) a ``view_submission``; each
is POSTed to the app's Request URL form-encoded (``payload=<json>``) and signed:
``X-Slack-Signature: v0=HMAC-SHA256(signing secret, "v0:{ts}:{body}")`` with
``X-Slack-Request-Timestamp``. A click carries a ``trigger_id`` (good once, 3 s) and a
``response_url`` (``/actions/…``, 30 minutes, 5 uses) where ephemeral replies land.

Controls (not Slack's): ``GET /_sim/state``, ``POST /_sim/people``, ``/_sim/click``,
``/_sim/submit``, ``/_sim/replay`` (the same signed bytes again), ``/_sim/ratelimit``
(the next N calls of a method get 429). Test controls may also sign wrongly
(``"tamper": "signature"``) or back-date the timestamp (``"age_seconds": 600``).

It shares nothing with the portal: no Django, no import from ``apps``.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import html
import json
import secrets
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import parse_qs, urlencode, urlsplit

from . import contract
from .workspace import (
    RESPONSE_URL_SECONDS,
    RESPONSE_URL_USES,
    TRIGGER_SECONDS,
    OpenView,
    Person,
    Posted,
    Workspace,
)

JSON_METHODS = {"chat.postMessage", "chat.update", "views.open", "auth.test"}
FORM_ONLY = {"users.info"}
SCOPES = {
    "chat.postMessage": "chat:write",
    "chat.update": "chat:write",
    "users.info": "users:read",
    "views.open": "",
    "auth.test": "",
}
JSON_ARGUMENTS = {"blocks", "attachments", "metadata", "view"}
BOOL_ARGUMENTS = {
    "as_user",
    "link_names",
    "mrkdwn",
    "reply_broadcast",
    "unfurl_links",
    "unfurl_media",
}
MAX_TEXT = 40000
MAX_BODY = 2 * 1024 * 1024
_PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"


class ApiError(Exception):
    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


class SlackSimulator:
    """The server: ``start()`` in a thread, ``url`` for the portal's SLACK_API_URL."""

    def __init__(
        self,
        *,
        bot_token: str,
        signing_secret: str,
        interactivity_url: str = "",
        port: int = 0,
        host: str = "127.0.0.1",
        workspace: Workspace | None = None,
    ) -> None:
        self.workspace = workspace or Workspace(bot_token=bot_token)
        self.signing_secret = signing_secret
        self.interactivity_url = interactivity_url
        self.ui_token = secrets.token_urlsafe(16)
        sim = self

        class Handler(_Handler):
            simulator = sim

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.thread: threading.Thread | None = None

    @property
    def base(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def url(self) -> str:
        return f"{self.base}/api"

    def start(self) -> SlackSimulator:
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # --- the Web API -----------------------------------------------------------------------

    def api(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        handler = getattr(self, "_" + method.replace(".", "_"), None)
        if handler is None:
            raise ApiError("unknown_method")
        needed = SCOPES.get(method, "")
        ws = self.workspace
        if needed and needed not in ws.scopes:
            raise ApiError("missing_scope", needed=needed, provided=",".join(sorted(ws.scopes)))
        problems = contract.errors(method, args) if method in contract.document()["$defs"] else []
        if problems:
            code = (
                "invalid_blocks"
                if any(p.startswith("$.blocks") for p in problems)
                else ("invalid_arguments")
            )
            raise ApiError(code, response_metadata={"messages": problems})
        answer: dict[str, Any] = handler(args)
        return answer

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        ws = self.workspace
        return {
            "ok": True,
            "url": f"https://{ws.team_domain}.slack.com/",
            "team": ws.team_domain,
            "team_id": ws.team_id,
            "user_id": ws.bot_user,
            "bot_id": ws.bot_id,
        }

    def _channel(self, name: str) -> str:
        ws = self.workspace
        if name in ws.channels:
            return name
        bare = name.lstrip("#")
        for channel_id, channel in ws.channels.items():
            if channel["name"] == bare:
                return channel_id
        raise ApiError("channel_not_found")

    def _chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        ws = self.workspace
        with ws.lock:
            channel = self._channel(str(args["channel"]))
            info = ws.channels[channel]
            if info["archived"]:
                raise ApiError("is_archived")
            if not info["member"]:
                raise ApiError("not_in_channel")
            text, blocks = str(args.get("text") or ""), args.get("blocks") or []
            if not text and not blocks:
                raise ApiError("no_text")
            if len(text) > MAX_TEXT:
                raise ApiError("msg_too_long")
            ts = ws.new_ts()
            posted = Posted(channel=channel, ts=ts, text=text, blocks=blocks, bot_id=ws.bot_id)
            ws.messages[(channel, ts)] = posted
            return {"ok": True, "channel": channel, "ts": ts, "message": _message(posted, ws)}

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        ws = self.workspace
        with ws.lock:
            channel = self._channel(str(args["channel"]))
            posted = ws.messages.get((channel, str(args["ts"])))
            if posted is None:
                raise ApiError("message_not_found")
            if posted.bot_id != ws.bot_id:
                raise ApiError("cant_update_message")
            text = str(args.get("text") or "")
            if len(text) > MAX_TEXT:
                raise ApiError("msg_too_long")
            if "blocks" in args:
                posted.blocks = args["blocks"] or []
            if "text" in args:
                posted.text = text
            if not posted.text and not posted.blocks:
                raise ApiError("no_text")
            posted.edited += 1
            return {
                "ok": True,
                "channel": channel,
                "ts": posted.ts,
                "text": posted.text,
                "message": _message(posted, ws),
            }

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        ws = self.workspace
        with ws.lock:
            person = ws.people.get(str(args["user"]))
            if person is None:
                raise ApiError("user_not_found")
            profile: dict[str, Any] = {
                "real_name": person.real_name or person.name,
                "display_name": person.name,
                "image_24": "https://a.slack-edge.invalid/24.png",
            }
            if "users:read.email" in ws.scopes:
                profile["email"] = person.email
            return {
                "ok": True,
                "user": {
                    "id": person.id,
                    "team_id": ws.team_id,
                    "name": person.name,
                    "real_name": person.real_name or person.name,
                    "deleted": person.deleted,
                    "is_bot": person.is_bot,
                    "is_app_user": False,
                    "is_email_confirmed": person.is_email_confirmed,
                    "profile": profile,
                },
            }

    def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        ws = self.workspace
        with ws.lock:
            trigger = ws.triggers.get(str(args.get("trigger_id") or ""))
            if trigger is None:
                raise ApiError("invalid_trigger_id")
            if trigger.used:
                raise ApiError("exchanged_trigger_id")
            if time.monotonic() - trigger.issued > TRIGGER_SECONDS:
                raise ApiError("expired_trigger_id")
            trigger.used = True
            view_id = "V" + secrets.token_hex(5).upper()
            view = dict(args["view"])
            ws.views[view_id] = OpenView(id=view_id, user=trigger.user, view=view)
            answer = {
                **view,
                "id": view_id,
                "team_id": ws.team_id,
                "app_id": ws.app_id,
                "bot_id": ws.bot_id,
                "state": {"values": {}},
                "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            }
            return {"ok": True, "view": answer}

    # --- interactivity ---------------------------------------------------------------------

    def click(self, spec: dict[str, Any]) -> dict[str, Any]:
        """A person clicks a button of a message: send the block_actions payload."""
        ws = self.workspace
        with ws.lock:
            user = ws.people.get(str(spec.get("user")))
            if user is None:
                raise ValueError("no such user")
            posted = ws.messages.get((str(spec.get("channel")), str(spec.get("ts"))))
            if posted is None:
                raise ValueError("no such message")
            action_id = str(spec.get("action_id"))
            found = None
            for block in posted.blocks:
                for element in block.get("elements", []) if block.get("type") == "actions" else []:
                    if element.get("action_id") == action_id:
                        found = (block, element)
            if found is None:
                raise ValueError(f"the message has no button {action_id}")
            block, element = found
            payload: dict[str, Any] = {
                "type": "block_actions",
                **_who(user, ws),
                "container": {
                    "type": "message",
                    "message_ts": posted.ts,
                    "channel_id": posted.channel,
                    "is_ephemeral": False,
                },
                "trigger_id": ws.new_trigger(user.id),
                "team": {"id": ws.team_id, "domain": ws.team_domain},
                "enterprise": None,
                "is_enterprise_install": False,
                "channel": {"id": posted.channel, "name": ws.channels[posted.channel]["name"]},
                "message": _message(posted, ws),
                "state": {"values": {}},
                "response_url": ws.new_response_url(self.base, user.id, posted.channel),
                "actions": [
                    {
                        "type": "button",
                        "action_id": action_id,
                        "block_id": block.get("block_id", "b" + secrets.token_hex(3)),
                        "text": element.get("text"),
                        "value": element.get("value", ""),
                        **({"style": element["style"]} if "style" in element else {}),
                        "action_ts": f"{time.time():.6f}",
                    }
                ],
            }
        assert not contract.errors("block_actions", payload)
        return self._deliver(payload, spec)

    def submit(self, spec: dict[str, Any]) -> dict[str, Any]:
        """A person submits an open dialog: send the view_submission payload."""
        ws = self.workspace
        with ws.lock:
            open_view = ws.views.get(str(spec.get("view_id")))
            if open_view is None or open_view.closed:
                raise ValueError("no such open view")
            user = ws.people[open_view.user]
            typed = spec.get("values") or {}
            values: dict[str, Any] = {}
            for block in open_view.view.get("blocks", []):
                if block.get("type") == "input":
                    element = block["element"]
                    values[block["block_id"]] = {
                        element["action_id"]: {
                            "type": element["type"],
                            "value": typed.get(block["block_id"]) or None,
                        }
                    }
            view = {
                **open_view.view,
                "id": open_view.id,
                "team_id": ws.team_id,
                "app_id": ws.app_id,
                "bot_id": ws.bot_id,
                "private_metadata": open_view.view.get("private_metadata", ""),
                "callback_id": open_view.view.get("callback_id", ""),
                "state": {"values": values},
                "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            }
            payload = {
                "type": "view_submission",
                "team": {"id": ws.team_id, "domain": ws.team_domain},
                **_who(user, ws),
                "trigger_id": ws.new_trigger(user.id),
                "view": view,
                "response_urls": [],
                "is_enterprise_install": False,
                "enterprise": None,
            }
        assert not contract.errors("view_submission", payload)
        result = self._deliver(payload, spec)
        answer = result.get("json")
        with ws.lock:
            if (
                result["status"] == 200
                and isinstance(answer, dict)
                and answer.get("response_action") == "errors"
            ):
                open_view.errors = dict(answer.get("errors") or {})
            elif result["status"] == 200:
                open_view.closed = True
        return result

    def _deliver(self, payload: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
        body = urlencode({"payload": json.dumps(payload)}).encode()
        stamp = str(int(time.time()) - int(spec.get("age_seconds") or 0))
        secret = self.signing_secret
        if spec.get("tamper") == "signature":
            secret = "not-" + secret
        digest = hmac.new(secret.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": "v0=" + digest.hexdigest(),
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
        }
        delivery = secrets.token_hex(6)
        with self.workspace.lock:
            self.workspace.deliveries[delivery] = {"body": body, "headers": headers}
        return {"delivery": delivery, "payload": payload, **self._post(body, headers)}

    def replay(self, delivery: str) -> dict[str, Any]:
        with self.workspace.lock:
            sent = self.workspace.deliveries.get(delivery)
        if sent is None:
            raise ValueError("no such delivery")
        return {"delivery": delivery, **self._post(sent["body"], sent["headers"])}

    def _post(self, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
        if not self.interactivity_url:
            raise ValueError("no interactivity Request URL configured")
        request = urllib.request.Request(  # noqa: S310 - the configured Request URL
            self.interactivity_url, data=body, headers=headers, method="POST"
        )
        try:
            # Slack waits 3 seconds for the app; the stand-in is more patient on a slow CI.
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                status, text = response.status, response.read().decode("utf-8", "replace")
        except HTTPError as exc:
            status, text = exc.code, exc.read().decode("utf-8", "replace")
        except URLError as exc:
            return {"status": 0, "body": f"unreachable: {exc.reason}", "json": None}
        try:
            parsed = json.loads(text) if text.strip() else {}
        except ValueError:
            parsed = None
        return {"status": status, "body": text, "json": parsed}

    def respond(self, token: str, body: dict[str, Any]) -> tuple[int, str]:
        """What Slack does with a POST to a response_url."""
        ws = self.workspace
        with ws.lock:
            entry = ws.response_urls.get(token)
            if entry is None:
                return 404, "no_service"
            if time.monotonic() - entry.issued > RESPONSE_URL_SECONDS:
                return 404, "expired_url"
            if entry.uses >= RESPONSE_URL_USES:
                return 404, "used_url"
            entry.uses += 1
            text = str(body.get("text") or "")
            if not text and not body.get("blocks"):
                return 400, "no_text"
            if body.get("response_type", "ephemeral") == "ephemeral":
                ws.ephemerals.append(_ephemeral(entry.user, entry.channel, text))
            return 200, "ok"


def _who(user: Person, ws: Workspace) -> dict[str, Any]:
    """The parts every interaction payload has: the user, the app, the legacy token."""
    return {
        "user": {"id": user.id, "username": user.name, "name": user.name, "team_id": ws.team_id},
        "api_app_id": ws.app_id,
        "token": "legacy-verification-token",
    }


def _ephemeral(user: str, channel: str, text: str) -> Any:
    from .workspace import Ephemeral

    return Ephemeral(user=user, channel=channel, text=text, at=time.time())


def _message(posted: Posted, ws: Workspace) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "message",
        "subtype": "bot_message",
        "text": posted.text,
        "ts": posted.ts,
        "bot_id": posted.bot_id,
        "app_id": ws.app_id,
        "blocks": posted.blocks,
    }
    if posted.edited:
        out["edited"] = {"user": ws.bot_user, "ts": f"{time.time():.6f}"}
    return out


class _Handler(BaseHTTPRequestHandler):
    simulator: SlackSimulator
    server_version = "slack-stand-in"

    def log_message(self, fmt: str, *args: Any) -> None:
        pass

    # --- plumbing ----------------------------------------------------------------------

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(data).encode(), "application/json; charset=utf-8", headers)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ApiError("request_too_large")
        return self.rfile.read(length) if length > 0 else b""

    def do_GET(self) -> None:
        path = urlsplit(self.path)
        if path.path.startswith("/api/"):
            self._api(path.path[5:], dict(_single(parse_qs(path.query))), query_token=True)
        elif path.path == "/_sim/state":
            self._json(200, self.simulator.workspace.snapshot())
        elif path.path == "/":
            from .page import render

            viewer = _single(parse_qs(path.query)).get("as", "")
            html_text = render(self.simulator, viewer)
            self._send(
                200,
                html_text.encode(),
                "text/html; charset=utf-8",
                {"Content-Security-Policy": _PAGE_CSP},
            )
        else:
            self._json(404, {"ok": False, "error": "unknown_method"})

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        try:
            body = self._body()
        except ApiError as exc:
            self._json(413, {"ok": False, "error": exc.error})
            return
        if path.startswith("/api/"):
            self._api_post(path[5:], body)
        elif path.startswith("/actions/"):
            token = path.rsplit("/", 1)[-1]
            try:
                data = json.loads(body or b"{}")
            except ValueError:
                self._send(400, b"invalid_payload", "text/plain")
                return
            status, text = self.simulator.respond(token, data if isinstance(data, dict) else {})
            self._send(status, text.encode(), "text/plain")
        elif path.startswith("/_sim/"):
            self._control(path[6:], body)
        elif path.startswith("/_ui/"):
            self._ui(path[5:], body)
        else:
            self._json(404, {"ok": False, "error": "unknown_method"})

    # --- the API -----------------------------------------------------------------------

    def _api_post(self, method: str, body: bytes) -> None:
        kind = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if kind == "application/json":
            if method not in JSON_METHODS:
                self._json(200, {"ok": False, "error": "invalid_arguments"})
                return
            try:
                args = json.loads(body or b"{}")
            except ValueError:
                self._json(200, {"ok": False, "error": "invalid_json"})
                return
            if not isinstance(args, dict):
                self._json(200, {"ok": False, "error": "invalid_json"})
                return
            if "token" in args:
                self._json(200, {"ok": False, "error": "invalid_arguments"})
                return
            self._api(method, args, query_token=False)
        elif kind in ("application/x-www-form-urlencoded", ""):
            try:
                form = dict(_single(parse_qs(body.decode("utf-8"), keep_blank_values=True)))
            except UnicodeDecodeError:
                self._json(200, {"ok": False, "error": "invalid_form_data"})
                return
            self._api(method, form, query_token=True)
        else:
            self._json(200, {"ok": False, "error": "invalid_post_type"})

    def _api(self, method: str, args: dict[str, Any], *, query_token: bool) -> None:
        sim = self.simulator
        auth = self.headers.get("Authorization") or ""
        token = auth[7:].strip() if auth.startswith("Bearer ") else ""
        if not token and query_token:
            token = str(args.pop("token", "") or "")
        args.pop("token", None)
        if not token:
            self._json(200, {"ok": False, "error": "not_authed"})
            return
        if not hmac.compare_digest(token.encode(), sim.workspace.bot_token.encode()):
            self._json(200, {"ok": False, "error": "invalid_auth"})
            return
        if query_token and method not in FORM_ONLY:
            try:
                args = _typed(args)
            except ValueError:
                self._json(200, {"ok": False, "error": "invalid_arguments"})
                return
        channel = str(args.get("channel") or "")
        wait = sim.workspace.limited(method, channel)
        if wait is not None:
            self._json(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(wait)})
            return
        with sim.workspace.lock:
            sim.workspace.calls.append({"method": method, "args": args})
        try:
            self._json(200, sim.api(method, args))
        except ApiError as exc:
            self._json(200, {"ok": False, "error": exc.error, **exc.extra})

    # --- controls ----------------------------------------------------------------------

    def _control(self, name: str, body: bytes) -> None:
        sim = self.simulator
        try:
            spec = json.loads(body or b"{}")
            if not isinstance(spec, dict):
                raise ValueError("a JSON object, please")
            if name == "people":
                sim.workspace.add_person(Person(**spec))
                self._json(200, {"ok": True})
            elif name == "click":
                self._json(200, sim.click(spec))
            elif name == "submit":
                self._json(200, sim.submit(spec))
            elif name == "replay":
                self._json(200, sim.replay(str(spec.get("delivery"))))
            elif name == "ratelimit":
                with sim.workspace.lock:
                    sim.workspace.forced_limits[str(spec["method"])] = [
                        int(spec.get("count", 1)),
                        int(spec.get("retry_after", 1)),
                    ]
                self._json(200, {"ok": True})
            else:
                self._json(404, {"ok": False, "error": "no such control"})
        except (ValueError, TypeError, KeyError) as exc:
            self._json(400, {"ok": False, "error": str(exc)})

    def _ui(self, name: str, body: bytes) -> None:
        """The demo page's forms: a click or a dialog submit, then back to the page."""
        sim = self.simulator
        form = dict(_single(parse_qs(body.decode("utf-8", "replace"))))
        if not hmac.compare_digest(str(form.get("ui_token", "")).encode(), sim.ui_token.encode()):
            self._send(403, b"stale page: reload it", "text/plain")
            return
        viewer = str(form.get("as", ""))
        try:
            if name == "click":
                sim.click(
                    {
                        "user": viewer,
                        "channel": form.get("channel"),
                        "ts": form.get("ts"),
                        "action_id": form.get("action_id"),
                    }
                )
            elif name == "submit":
                values = {k[6:]: v for k, v in form.items() if k.startswith("input:")}
                sim.submit({"view_id": form.get("view_id"), "values": values})
        except ValueError as exc:
            self._send(400, html.escape(str(exc)).encode(), "text/plain")
            return
        self.send_response(303)
        self.send_header("Location", "/?" + urlencode({"as": viewer}))
        self.send_header("Content-Length", "0")
        self.end_headers()


def _single(pairs: dict[str, list[str]]) -> dict[str, str]:
    return {key: values[-1] for key, values in pairs.items()}


def _typed(args: dict[str, Any]) -> dict[str, Any]:
    """Form values as Slack reads them: JSON for blocks, view...; true/1 for flags."""
    out: dict[str, Any] = {}
    for key, value in args.items():
        if key in JSON_ARGUMENTS and isinstance(value, str):
            out[key] = json.loads(value)
        elif key in BOOL_ARGUMENTS and isinstance(value, str):
            out[key] = value.lower() in ("1", "true")
        else:
            out[key] = value
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Slack stand-in (Web API + interactivity)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--bot-token", required=True)
    parser.add_argument("--signing-secret", required=True)
    parser.add_argument("--interactivity-url", default="")
    parser.add_argument(
        "--channel", action="append", default=[], help="ID:name, a channel the bot is in"
    )
    parser.add_argument(
        "--person", action="append", default=[], help="ID:name:email, a member of the workspace"
    )
    args = parser.parse_args(argv)
    sim = SlackSimulator(
        bot_token=args.bot_token,
        signing_secret=args.signing_secret,
        interactivity_url=args.interactivity_url,
        port=args.port,
    )
    for spec in args.channel:
        channel_id, _, name = spec.partition(":")
        sim.workspace.add_channel(channel_id, name or channel_id.lower())
    for spec in args.person:
        person_id, name, email = spec.split(":", 2)
        sim.workspace.add_person(Person(id=person_id, name=name, email=email))
    sys.stdout.write(f"Slack stand-in on {sim.base} (Web API {sim.url})\n")
    sys.stdout.flush()
    try:
        sim.httpd.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        sim.httpd.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()
