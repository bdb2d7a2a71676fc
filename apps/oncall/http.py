"""One GET to an on-call provider, every transport failure turned into ``Unreachable``."""

from __future__ import annotations

from typing import Any

import requests
from django.conf import settings

from apps.access.oncall import Unreachable


def get(url: str, *, params: dict[str, str], headers: dict[str, str]) -> requests.Response:
    """GET ``url``: the response whatever its status; ``Unreachable`` when none came."""
    try:
        return requests.get(
            url,
            params=params,
            headers=headers,
            timeout=settings.ONCALL_TIMEOUT_SECONDS,
            allow_redirects=False,
        )
    except requests.Timeout:
        raise Unreachable(f"no answer within {settings.ONCALL_TIMEOUT_SECONDS:g} s") from None
    except requests.RequestException as exc:
        raise Unreachable(f"could not connect ({type(exc).__name__})") from None


def json_object(response: requests.Response) -> dict[str, Any]:
    """The answer's JSON object; ``Unreachable`` when it is not one."""
    try:
        data = response.json()
    except ValueError:
        raise Unreachable("the answer is not JSON") from None
    if not isinstance(data, dict):
        raise Unreachable("the answer is not a JSON object")
    return data
