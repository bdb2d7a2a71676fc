"""PagerDuty's REST API v2: who is on call for a schedule now (``GET /oncalls``).

``GET {PAGERDUTY_API_URL}/oncalls?schedule_ids[]=S&include[]=users&time_zone=UTC`` with
``Authorization: Token token=<PAGERDUTY_TOKEN>`` and
``Accept: application/vnd.pagerduty+json;version=2``. Without ``since``/``until`` PagerDuty
answers the on-calls of this moment. ``include[]=users`` embeds each user with their
email (a bare reference has none). Pages of ``limit`` entries follow ``more``/``offset``.

Plain ``requests``, not pdpyras: this is one read-only endpoint with offset paging, and
pdpyras (now superseded by the ``pagerduty`` package) would add a dependency for a loop
we state in ten lines.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import requests
from django.conf import settings

from apps.access.oncall import OnCallEntry, Unreachable

from . import http

PAGE = 100
MAX_PAGES = 10


class PagerDutySource:
    provider = "pagerduty"

    def on_call(self, schedule: str, *, now: datetime) -> list[OnCallEntry]:
        token = settings.PAGERDUTY_TOKEN
        if not token:
            raise Unreachable("PAGERDUTY_TOKEN is not set")
        entries: list[OnCallEntry] = []
        offset = 0
        for _ in range(MAX_PAGES):
            page = self._page(token, schedule, offset)
            for item in page.get("oncalls") or []:
                entry = _entry(item, schedule)
                if entry is not None:
                    entries.append(entry)
            if not page.get("more"):
                return entries
            offset += PAGE
        raise Unreachable(f"more than {PAGE * MAX_PAGES} on-call entries; refusing to guess")

    def _page(self, token: str, schedule: str, offset: int) -> dict[str, Any]:
        response = http.get(
            f"{settings.PAGERDUTY_API_URL}/oncalls",
            params={
                "schedule_ids[]": schedule,
                "include[]": "users",
                "time_zone": "UTC",
                "limit": str(PAGE),
                "offset": str(offset),
            },
            headers={
                "Authorization": f"Token token={token}",
                "Accept": "application/vnd.pagerduty+json;version=2",
            },
        )
        if response.status_code != 200:
            raise Unreachable(_refusal(response))
        return http.json_object(response)


def _refusal(response: requests.Response) -> str:
    status = response.status_code
    message = ""
    try:
        error = response.json().get("error") or {}
        message = str(error.get("message") or "")[:200]
    except (ValueError, AttributeError):
        pass
    if status in (401, 403):
        return f"PagerDuty refused the token (HTTP {status})"
    if status == 429:
        return "PagerDuty's rate limit was reached (HTTP 429)"
    return f"HTTP {status}" + (f": {message}" if message else "")


def _obj(container: dict[str, Any], key: str) -> dict[str, Any]:
    value = container.get(key)
    return value if isinstance(value, dict) else {}


def _entry(item: Any, schedule: str) -> OnCallEntry | None:
    if not isinstance(item, dict):
        return None
    found = _obj(item, "schedule")
    if found.get("id") != schedule:
        return None  # another schedule's layer of the same escalation policy
    user = _obj(item, "user")
    email = user.get("email")
    if not isinstance(email, str) or not email:
        return None
    policy = _obj(item, "escalation_policy")
    return OnCallEntry(
        provider="pagerduty",
        schedule=schedule,
        email=email,
        detail={
            "user_id": str(user.get("id") or ""),
            "user_name": str(user.get("name") or user.get("summary") or ""),
            "escalation_policy": str(policy.get("id") or ""),
            "escalation_level": item.get("escalation_level"),
            "start": item.get("start"),
            "end": item.get("end"),
        },
    )
