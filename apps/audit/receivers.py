"""Hooks that feed the audit context: Celery tasks get an audit/log context (request id =
task id).

django-auditlog's own entries (field history of admin-edited configuration, shown in the
admin) are not copied into the chained trail: every chained entry is written by the
service that made the change, with the changed fields in its details (docs/audit.md "The audit
trail").
"""

from __future__ import annotations

import contextlib
from typing import Any

from celery.signals import task_postrun, task_prerun

from . import context

_task_tokens: dict[str, Any] = {}


@task_prerun.connect
def open_task_context(task_id: str | None = None, **kwargs: Any) -> None:
    if task_id:
        _task_tokens[task_id] = context.activate(context.AuditContext(request_id=f"task:{task_id}"))


@task_postrun.connect
def close_task_context(task_id: str | None = None, **kwargs: Any) -> None:
    token = _task_tokens.pop(task_id or "", None)
    if token is not None:
        # A token from another context (eager mode) has nothing to undo.
        with contextlib.suppress(ValueError):
            context.deactivate(token)
