"""Hooks that feed the audit context and the one timeline.

* django-auditlog records field-level changes of registered models (its own LogEntry,
  shown in the admin's history). Each LogEntry is mirrored into the hash-chained trail as
  a ``record.changed`` entry in the same transaction, so one chained timeline tells the
  whole story and the export needs no join.
* Celery tasks get an audit/log context (request id = task id).
"""

from __future__ import annotations

import contextlib
from typing import Any

from auditlog.signals import post_log
from celery.signals import task_postrun, task_prerun
from django.db import transaction
from django.dispatch import receiver

from . import context
from .models import AuditAction
from .services import record

_task_tokens: dict[str, Any] = {}


@receiver(post_log)
def mirror_auditlog_entry(
    sender: type, instance: Any, action: int, log_entry: Any = None, **kwargs: Any
) -> None:
    if log_entry is None:
        return
    slug = getattr(instance, "resource_slug_for_audit", "")
    with transaction.atomic():
        record(
            AuditAction.FIELD_CHANGED,
            actor=log_entry.actor,
            target=instance,
            resource_slug=slug,
            details={
                "auditlog_entry": log_entry.pk,
                "operation": log_entry.get_action_display(),
                "changes": log_entry.changes_dict,
            },
        )


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
