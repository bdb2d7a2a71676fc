"""The Slack incoming-webhook client: post one message, say whether a failure is worth a retry.

A webhook URL is a credential (anyone holding it can post to the channel), so it never
appears in an error message, a log line or a chained exception raised from here.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import requests

TIMEOUT_SECONDS = 10.0


class SlackError(Exception):
    """Slack did not take the message. ``str(exc)`` is readable and free of the URL.

    ``permanent`` says retrying the same message will not help (Slack said 4xx);
    ``retry_after`` carries Slack's Retry-After (seconds) on 429.
    """

    def __init__(self, message: str, *, permanent: bool, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after


def redact(text: str, secret: str) -> str:
    """Remove the webhook URL, and its path on its own, from ``text``."""
    if not secret:
        return text
    text = text.replace(secret, "[webhook]")
    path = secret.split("://", 1)[-1].partition("/")[2]
    if path:
        text = text.replace("/" + path, "/[webhook]")
    return text


# Paths of Slack webhooks (incoming webhooks, workflow triggers): the secret is the path.
_WEBHOOK_PATH = re.compile(r"/(services|triggers|workflows)/[^\s\"']+")


class RedactWebhookPaths(logging.Filter):
    """Masks webhook paths in urllib3's DEBUG lines ("POST /services/T…/B…/secret 200").

    Installed on ``urllib3.connectionpool`` by the app config; it never drops a record.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            if isinstance(record.args, tuple):
                record.args = tuple(
                    _WEBHOOK_PATH.sub(r"/\1/[webhook]", a) if isinstance(a, str) else a
                    for a in record.args
                )
            if isinstance(record.msg, str):
                record.msg = _WEBHOOK_PATH.sub(r"/\1/[webhook]", record.msg)
        except Exception:  # a log filter must never break the caller
            return True
        return True


def _retry_after(response: requests.Response) -> int | None:
    try:
        return max(0, int(response.headers.get("Retry-After", "")))
    except ValueError:
        return None


def post_message(
    webhook_url: str, payload: dict[str, Any], *, timeout: float | None = None
) -> None:
    """POST ``payload`` as JSON to the webhook; return when Slack answered 2xx.

    Raises ``SlackError``: transient for timeouts, connection failures, 429 and 5xx;
    permanent for any other answer (400 invalid_payload, 403, 404 no_service, 410
    channel_is_archived, a redirect). ``timeout`` defaults to ``TIMEOUT_SECONDS``.
    """
    timeout = timeout or TIMEOUT_SECONDS
    try:
        response = requests.post(webhook_url, json=payload, timeout=timeout, allow_redirects=False)
    # ``from None``: the requests exception's text names the URL.
    except requests.Timeout:
        raise SlackError(f"Slack did not answer within {timeout:g} s", permanent=False) from None
    except requests.ConnectionError:
        raise SlackError("could not connect to Slack", permanent=False) from None
    except requests.RequestException as exc:
        raise SlackError(
            f"request to Slack failed ({type(exc).__name__})", permanent=False
        ) from None
    status = response.status_code
    if 200 <= status < 300:
        return
    detail = redact(" ".join(response.text.split())[:200], webhook_url)
    message = f"Slack answered HTTP {status}" + (f": {detail}" if detail else "")
    if status == 429 or status >= 500:
        raise SlackError(message, permanent=False, retry_after=_retry_after(response))
    raise SlackError(message, permanent=True)
