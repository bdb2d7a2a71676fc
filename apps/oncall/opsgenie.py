"""Opsgenie's Who-is-on-call API: the on-call participants of a schedule now.

``GET {OPSGENIE_API_URL}/v2/schedules/{schedule}/on-calls?flat=true`` with
``Authorization: GenieKey <OPSGENIE_API_KEY>``; ``scheduleIdentifierType`` is ``id`` for
a UUID and ``name`` otherwise. With ``flat=true`` the answer lists the on-call users'
usernames (``data.onCallRecipients``), which in Opsgenie are their email addresses. For
the EU instance set ``OPSGENIE_API_URL=https://api.eu.opsgenie.com``.
"""

from __future__ import annotations

import contextlib
import re
from datetime import datetime
from urllib.parse import quote

from django.conf import settings

from apps.access.oncall import OnCallEntry, Unreachable

from . import http

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class OpsgenieSource:
    provider = "opsgenie"

    def on_call(self, schedule: str, *, now: datetime) -> list[OnCallEntry]:
        key = settings.OPSGENIE_API_KEY
        if not key:
            raise Unreachable("OPSGENIE_API_KEY is not set")
        response = http.get(
            f"{settings.OPSGENIE_API_URL}/v2/schedules/{quote(schedule, safe='')}/on-calls",
            params={
                "scheduleIdentifierType": "id" if _UUID.match(schedule) else "name",
                "flat": "true",
            },
            headers={"Authorization": f"GenieKey {key}"},
        )
        if response.status_code != 200:
            message = ""
            with contextlib.suppress(ValueError, AttributeError):
                message = str(response.json().get("message") or "")[:200]
            if response.status_code in (401, 403):
                raise Unreachable(f"Opsgenie refused the API key (HTTP {response.status_code})")
            raise Unreachable(f"HTTP {response.status_code}" + (f": {message}" if message else ""))
        try:
            data = http.json_object(response).get("data") or {}
            recipients = data.get("onCallRecipients") or []
            parent = data.get("_parent") or {}
        except AttributeError:
            raise Unreachable("the answer is not what Opsgenie documents") from None
        return [
            OnCallEntry(
                provider="opsgenie",
                schedule=schedule,
                email=name,
                detail={"schedule_id": str(parent.get("id") or ""), "user_name": name},
            )
            for name in recipients
            if isinstance(name, str) and "@" in name
        ]
