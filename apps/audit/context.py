"""Who and where: the context an audit entry or log line is written in.

A request (RequestContextMiddleware) or a Celery task (task_prerun) opens a context;
the Pomerium middleware adds the assertion's jti/sid once it has verified it.
Context variables keep threads and tasks apart.
"""

from __future__ import annotations

import contextvars
import uuid
from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class AuditContext:
    request_id: str = ""
    upstream_request_id: str = ""
    ip: str | None = None
    user_agent: str = ""
    assertion_jti: str = ""
    assertion_sid: str = ""
    # How a person reached the portal: "web" (pages and admin), "api" (the JSON API) or
    # "slack" (a button in a Slack message).
    channel: str = ""
    # What the channel knows about where the change came from, as (name, value) pairs: for
    # Slack the user, team, channel and message. Entries of requests and grants carry them
    # under the channel's name.
    channel_details: tuple[tuple[str, str], ...] = ()


# AuditContext is frozen, so sharing one default instance is safe.
_current: contextvars.ContextVar[AuditContext] = contextvars.ContextVar(
    "audit_context",
    default=AuditContext(),  # noqa: B039
)


def current() -> AuditContext:
    return _current.get()


def activate(ctx: AuditContext) -> contextvars.Token[AuditContext]:
    return _current.set(ctx)


def deactivate(token: contextvars.Token[AuditContext]) -> None:
    _current.reset(token)


def update(**changes: Any) -> None:
    _current.set(replace(_current.get(), **changes))


def new_request_id() -> str:
    return uuid.uuid4().hex
