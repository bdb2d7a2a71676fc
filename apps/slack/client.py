"""The Slack Web API, through the official slack-sdk: one client, and what a failure means.

Methods are called as Slack documents them: ``POST {SLACK_API_URL}/{method}`` with
``Authorization: Bearer <bot token>`` (``users.info`` as a GET with its query, as Slack
lists it). Slack answers ``{"ok": false, "error": "..."}`` when it refuses, and HTTP 429
with ``Retry-After`` when a method's rate limit is reached. ``call`` turns every failure
into ``SlackFailure``: transient (worth another try later: 429, 5xx, Slack's own
``internal_error``-like codes, timeouts, connection failures) or permanent (anything else
Slack refused: a wrong channel, a revoked token, a missing scope). The bot token never
appears in a message raised from here.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.error import URLError

from django.conf import settings
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler
from slack_sdk.http_retry.handler import RetryHandler

log = logging.getLogger(__name__)

# Slack's own "try again" answers (ok: false with HTTP 200 or 5xx).
TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


class SlackFailure(Exception):
    """A Web API call did not succeed. ``str(exc)`` is readable and holds no secret.

    ``error`` is Slack's error code ("channel_not_found") or "" for a transport failure;
    ``permanent`` says another try will not help; ``retry_after`` is Slack's Retry-After.
    """

    def __init__(
        self, message: str, *, error: str = "", permanent: bool, retry_after: int | None = None
    ) -> None:
        super().__init__(message)
        self.error = error
        self.permanent = permanent
        self.retry_after = retry_after


def configured() -> bool:
    """Whether the portal's Slack app is set up to post (a bot token)."""
    return bool(settings.SLACK_BOT_TOKEN)


def web_client(*, retry_connection_errors: bool = False) -> WebClient:
    """A WebClient on ``SLACK_API_URL`` with the bot token.

    Posting gets no in-process retry (the outbox retries, and a retried post could post
    twice); reads may retry a dropped connection once.
    """
    handlers: list[RetryHandler] = (
        [ConnectionErrorRetryHandler(max_retry_count=1)] if retry_connection_errors else []
    )
    return WebClient(
        token=settings.SLACK_BOT_TOKEN or None,
        base_url=settings.SLACK_API_URL + "/",
        timeout=settings.SLACK_TIMEOUT_SECONDS,
        retry_handlers=handlers,
    )


def _retry_after(headers: Any) -> int | None:
    for name, value in dict(headers or {}).items():
        if str(name).lower() == "retry-after":
            try:
                return max(0, int(str(value).strip()))
            except ValueError:
                return None
    return None


def call(method: str, *, read: bool = False, **arguments: Any) -> dict[str, Any]:
    """Call ``method`` with ``arguments``; return Slack's answer (``ok`` is true) or raise
    ``SlackFailure``. ``read`` marks a method that changes nothing (a dropped connection
    is retried once)."""
    client = web_client(retry_connection_errors=read)
    try:
        if method == "users.info":
            response = client.users_info(**arguments)
        else:
            response = client.api_call(method, json=arguments)
    except SlackApiError as exc:
        raise _failure(method, exc) from None
    except TimeoutError:
        raise SlackFailure(
            f"Slack did not answer {method} within {settings.SLACK_TIMEOUT_SECONDS} s",
            permanent=False,
        ) from None
    except (URLError, ConnectionError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SlackFailure(
            f"could not reach Slack for {method} ({type(reason).__name__})", permanent=False
        ) from None
    except SlackRequestError as exc:
        raise SlackFailure(f"{method} was not sent: {exc}", permanent=True) from None
    data = response.data
    if not isinstance(data, dict):
        raise SlackFailure(f"Slack answered {method} with no JSON object", permanent=False)
    return data


def _failure(method: str, exc: SlackApiError) -> SlackFailure:
    response = exc.response
    status = int(getattr(response, "status_code", 0) or 0)
    data = response.data if isinstance(response.data, dict) else {}
    error = str(data.get("error") or "")[:200]
    retry_after = _retry_after(getattr(response, "headers", None))
    transient = status == 429 or status >= 500 or error in TRANSIENT_ERRORS
    detail = error or f"HTTP {status}"
    message = f"Slack refused {method}: {detail}" + (f" (HTTP {status})" if error else "")
    if retry_after is not None and transient:
        message += f", retry after {retry_after} s"
    return SlackFailure(message, error=error, permanent=not transient, retry_after=retry_after)
