"""A real HTTP server playing PagerDuty's and Opsgenie's on-call APIs, from their references.

PagerDuty REST API v2, ``GET /oncalls`` ("List all of the on-calls"):

* ``Authorization: Token token=<key>`` (else 401, error code 2006) and
  ``Accept: application/vnd.pagerduty+json;version=2`` (else 406);
* query ``schedule_ids[]``, ``user_ids[]``, ``escalation_policy_ids[]``, ``include[]``
  (``users``, ``schedules``, ``escalation_policies``), ``since``/``until`` (default: now),
  ``earliest``, ``time_zone``, ``limit`` (≤ 100, default 25), ``offset``, ``total``;
  anything else is 400 "Invalid Input Provided" (code 2001), the strictest reading;
* users come as references unless ``include[]=users`` (then with their email);
* 429 with PagerDuty's error body when the rate limit is reached.

Opsgenie, ``GET /v2/schedules/{identifier}/on-calls``: ``Authorization: GenieKey <key>``
(else 401 "Could not authenticate"), ``scheduleIdentifierType`` ``id`` or ``name``,
``flat`` (usernames, i.e. emails, in ``onCallRecipients``), ``date``; an unknown
schedule is 404.

Controls: ``POST /_sim/schedule`` (who is on call), ``/_sim/outage`` (every API call 503),
``/_sim/ratelimit`` (the next N calls 429); ``GET /_sim/requests`` (what was asked).
Every answer is checked against ``contract.json``. No Django, nothing from the portal.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from jsonschema import Draft202012Validator

_CONTRACT = json.loads(Path(__file__).with_name("contract.json").read_text("utf-8"))
PD_PARAMS = {
    "schedule_ids[]",
    "user_ids[]",
    "escalation_policy_ids[]",
    "include[]",
    "since",
    "until",
    "earliest",
    "time_zone",
    "limit",
    "offset",
    "total",
}
PD_INCLUDES = {"users", "schedules", "escalation_policies"}
PD_ACCEPT = "application/vnd.pagerduty+json;version=2"


def contract_errors(name: str, instance: Any) -> list[str]:
    validator = Draft202012Validator({"$ref": f"#/$defs/{name}", **_CONTRACT})
    return [e.message for e in validator.iter_errors(instance)][:10]


@dataclass
class OnCallPerson:
    id: str
    name: str
    email: str
    level: int = 1


@dataclass
class Schedule:
    provider: str
    id: str
    name: str
    policy: str = "PPOLICY1"
    on_call: list[OnCallPerson] = field(default_factory=list)
    start: datetime = field(default_factory=lambda: datetime.now(UTC) - timedelta(hours=2))
    end: datetime = field(default_factory=lambda: datetime.now(UTC) + timedelta(hours=6))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class OnCallSimulator:
    def __init__(
        self, *, pagerduty_token: str, opsgenie_key: str, port: int = 0, host: str = "127.0.0.1"
    ) -> None:
        self.pagerduty_token = pagerduty_token
        self.opsgenie_key = opsgenie_key
        self.lock = threading.Lock()
        self.schedules: dict[tuple[str, str], Schedule] = {}
        self.outage = False
        self.pending_limits = 0
        self.requests: list[dict[str, Any]] = []
        sim = self

        class Handler(_Handler):
            simulator = sim

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> OnCallSimulator:
        threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def set_schedule(self, schedule: Schedule) -> None:
        with self.lock:
            self.schedules[(schedule.provider, schedule.id)] = schedule

    # --- PagerDuty ---------------------------------------------------------------------

    def pagerduty(self, query: dict[str, list[str]], headers: Any) -> tuple[int, Any]:
        auth = headers.get("Authorization") or ""
        if auth != f"Token token={self.pagerduty_token}":
            return 401, {"error": {"message": "Authentication failed", "code": 2006}}
        if (headers.get("Accept") or "").replace(" ", "") != PD_ACCEPT:
            return 406, {"error": {"message": "Not Acceptable", "code": 2001}}
        unknown = sorted(set(query) - PD_PARAMS)
        includes = set(query.get("include[]", []))
        try:
            limit = int(query.get("limit", ["25"])[-1])
            offset = int(query.get("offset", ["0"])[-1])
            now = datetime.now(UTC)
            since = _when(query.get("since", [""])[-1]) or now
            until = _when(query.get("until", [""])[-1]) or now
        except ValueError:
            return 400, _pd_invalid(["limit, offset, since and until must be valid"])
        if unknown or not includes <= PD_INCLUDES or not 1 <= limit <= 100 or offset < 0:
            return 400, _pd_invalid([f"unexpected {', '.join(unknown) or 'value'}"])
        wanted = set(query.get("schedule_ids[]", []))
        rows = []
        with self.lock:
            for (provider, schedule_id), schedule in sorted(self.schedules.items()):
                if provider != "pagerduty" or (wanted and schedule_id not in wanted):
                    continue
                if schedule.end <= since or schedule.start > until:
                    continue
                for person in schedule.on_call:
                    rows.append(_pd_oncall(schedule, person, "users" in includes))
        page = rows[offset : offset + limit]
        return 200, {
            "oncalls": page,
            "limit": limit,
            "offset": offset,
            "more": offset + limit < len(rows),
            "total": len(rows) if query.get("total", ["false"])[-1] == "true" else None,
        }

    # --- Opsgenie ----------------------------------------------------------------------

    def opsgenie(
        self, identifier: str, query: dict[str, list[str]], headers: Any
    ) -> tuple[int, Any]:
        request_id = secrets.token_hex(8)
        if (headers.get("Authorization") or "") != f"GenieKey {self.opsgenie_key}":
            return 401, {"message": "Could not authenticate", "took": 0.0, "requestId": request_id}
        kind = query.get("scheduleIdentifierType", ["id"])[-1]
        if kind not in ("id", "name"):
            return 422, {"message": "Invalid identifier type", "took": 0.0, "requestId": request_id}
        with self.lock:
            found = next(
                (
                    s
                    for (p, _), s in self.schedules.items()
                    if p == "opsgenie" and (s.id if kind == "id" else s.name) == identifier
                ),
                None,
            )
        if found is None:
            return 404, {
                "message": f"Schedule with identifier [{identifier}] doesn't exist",
                "took": 0.0,
                "requestId": request_id,
            }
        now = datetime.now(UTC)
        people = found.on_call if found.start <= now < found.end else []
        data: dict[str, Any] = {"_parent": {"id": found.id, "name": found.name, "enabled": True}}
        if query.get("flat", ["false"])[-1] == "true":
            data["onCallRecipients"] = [p.email for p in people]
        else:
            data["onCallParticipants"] = [
                {"id": p.id, "name": p.email, "type": "user"} for p in people
            ]
        return 200, {"data": data, "took": 0.01, "requestId": request_id}


def _pd_invalid(errors: list[str]) -> dict[str, Any]:
    return {"error": {"message": "Invalid Input Provided", "code": 2001, "errors": errors}}


def _when(text: str) -> datetime | None:
    if not text:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("a time needs a zone")
    return moment


def _ref(kind: str, ident: str, summary: str) -> dict[str, Any]:
    return {
        "id": ident,
        "type": f"{kind}_reference",
        "summary": summary,
        "self": f"https://api.pagerduty.invalid/{kind}s/{ident}",
        "html_url": f"https://demo.pagerduty.invalid/{kind}s/{ident}",
    }


def _pd_oncall(schedule: Schedule, person: OnCallPerson, with_user: bool) -> dict[str, Any]:
    user: dict[str, Any] = _ref("user", person.id, person.name)
    if with_user:
        user = {
            **user,
            "type": "user",
            "name": person.name,
            "email": person.email,
            "time_zone": "Etc/UTC",
            "role": "user",
        }
    return {
        "escalation_policy": _ref("escalation_policy", schedule.policy, "Default"),
        "escalation_level": person.level,
        "schedule": _ref("schedule", schedule.id, schedule.name),
        "user": user,
        "start": _iso(schedule.start),
        "end": _iso(schedule.end),
    }


class _Handler(BaseHTTPRequestHandler):
    simulator: OnCallSimulator

    def log_message(self, fmt: str, *args: Any) -> None:
        pass

    def _json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        sim = self.simulator
        url = urlsplit(self.path)
        query = parse_qs(url.query, keep_blank_values=True)
        if url.path == "/_sim/requests":
            with sim.lock:
                self._json(200, list(sim.requests))
            return
        with sim.lock:
            sim.requests.append({"path": url.path, "query": query})
            outage = sim.outage
        if outage:
            self._json(503, {"error": {"message": "Service Unavailable", "code": 5003}})
            return
        if url.path == "/oncalls":
            if self._consume_limit():
                answer = {"error": {"message": "Rate Limit Exceeded", "code": 2020}}
                self._json(429, answer, {"ratelimit-limit": "960", "ratelimit-reset": "30"})
                return
            status, answer = sim.pagerduty(query, self.headers)
            name = "pd_oncalls_answer" if status == 200 else "pd_error"
        elif url.path.startswith("/v2/schedules/") and url.path.endswith("/on-calls"):
            identifier = unquote(url.path[len("/v2/schedules/") : -len("/on-calls")])
            status, answer = sim.opsgenie(identifier, query, self.headers)
            name = "og_oncalls_answer" if status == 200 else "og_error"
        else:
            self._json(404, {"error": {"message": "Not Found", "code": 2100}})
            return
        problems = contract_errors(name, answer)
        assert not problems, problems
        self._json(status, answer)

    def _consume_limit(self) -> bool:
        sim = self.simulator
        with sim.lock:
            if sim.pending_limits > 0:
                sim.pending_limits -= 1
                return True
        return False

    def do_POST(self) -> None:
        sim = self.simulator
        length = int(self.headers.get("Content-Length") or 0)
        try:
            spec = json.loads(self.rfile.read(length) or b"{}")
            path = urlsplit(self.path).path
            if path == "/_sim/schedule":
                sim.set_schedule(
                    Schedule(
                        provider=spec["provider"],
                        id=spec["id"],
                        name=spec.get("name", spec["id"]),
                        on_call=[OnCallPerson(**p) for p in spec.get("on_call", [])],
                    )
                )
            elif path == "/_sim/outage":
                with sim.lock:
                    sim.outage = bool(spec.get("on", True))
            elif path == "/_sim/ratelimit":
                with sim.lock:
                    sim.pending_limits = int(spec.get("count", 1))
            else:
                self._json(404, {"error": "no such control"})
                return
        except (ValueError, KeyError, TypeError) as exc:
            self._json(400, {"error": str(exc)})
            return
        self._json(200, {"ok": True})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="PagerDuty / Opsgenie on-call stand-in")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pagerduty-token", required=True)
    parser.add_argument("--opsgenie-key", default="demo-genie-key")
    parser.add_argument(
        "--pagerduty-schedule",
        action="append",
        default=[],
        help="SCHEDULE_ID:USER_ID:NAME:EMAIL, someone on call now",
    )
    args = parser.parse_args(argv)
    sim = OnCallSimulator(
        pagerduty_token=args.pagerduty_token, opsgenie_key=args.opsgenie_key, port=args.port
    )
    for spec in args.pagerduty_schedule:
        schedule_id, user_id, name, email = spec.split(":", 3)
        sim.set_schedule(
            Schedule(
                provider="pagerduty",
                id=schedule_id,
                name="Primary on call",
                on_call=[OnCallPerson(id=user_id, name=name, email=email)],
            )
        )
    sys.stdout.write(f"On-call stand-in on {sim.url}\n")
    sys.stdout.flush()
    try:
        sim.httpd.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        sim.httpd.server_close()


if __name__ == "__main__":
    main()
