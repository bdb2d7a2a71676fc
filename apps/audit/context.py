"""Who and where: the context an audit entry or log line is written in.

A request (RequestContextMiddleware) or a Celery task (task_prerun) opens a context;
the Pomerium middleware adds the assertion's jti/sid once it has verified it.
Context variables keep threads and tasks apart.
"""

from __future__ import annotations

import contextvars
import uuid
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class AuditContext:
    request_id: str = ""
    upstream_request_id: str = ""
    ip: str | None = None
    user_agent: str = ""
    assertion_jti: str = ""
    assertion_sid: str = ""
    # How a person reached the portal: "web" (pages and admin) or "api" (the JSON API).
    channel: str = ""


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


def update(**changes: str) -> None:
    _current.set(replace(_current.get(), **changes))


def new_request_id() -> str:
    return uuid.uuid4().hex
