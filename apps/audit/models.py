"""The append-only, hash-chained audit trail.

Every entry carries ``hash = sha256(canonical content including prev_hash)``; ``seq``
numbers entries 1, 2, 3, ... in the order their transactions took the chain head, so
an altered, removed or inserted row breaks the chain (see ``chain.verify``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.conf import settings
from django.db import models

from . import actions


class AuditOwnAction(models.TextChoices):
    """The actions the audit app itself writes. Every other app declares and registers its
    own (``apps/<app>/actions.py``); the codes never change, so older trails verify."""

    # No longer written (each change has one entry, by its service); older trails hold
    # copies of django-auditlog entries under this action, which still verify.
    FIELD_CHANGED = "record.changed", "Record fields changed"
    AUDIT_EXPORTED = "audit.exported", "Audit trail exported"


actions.register(AuditOwnAction)

# The historic name of the audit app's own actions.
AuditAction = AuditOwnAction


class AppendOnlyError(Exception):
    """Raised on any attempt to change or remove an audit entry."""


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    def update(self, **kwargs: Any) -> int:
        raise AppendOnlyError("audit entries cannot be updated")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("audit entries cannot be deleted")

    def in_chain_order(self) -> AuditEventQuerySet:
        return self.order_by("seq")


class AuditEvent(models.Model):
    seq = models.BigIntegerField(unique=True, editable=False)
    created_at = models.DateTimeField(db_index=True, editable=False)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,  # the trail outlives users; the copied label keeps the name
    )
    actor_label = models.CharField(max_length=254, help_text="Email at the time, or 'system'.")
    # The code of a registered action (``apps.audit.actions``); no ``choices`` here, so a
    # new action needs no migration.
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=300, blank=True)
    resource_slug = models.CharField(max_length=64, blank=True, db_index=True)
    request_id = models.CharField(max_length=128, blank=True)
    upstream_request_id = models.CharField(
        max_length=128, blank=True, help_text="The trusted proxy's own request id, if it sent one."
    )
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    assertion_jti = models.CharField(max_length=64, blank=True)
    assertion_sid = models.CharField(max_length=128, blank=True)
    details = models.JSONField(default=dict, blank=True)
    # The canonical JSON text of ``details`` (chain.dumps), exactly as it was hashed; the
    # PostgreSQL export streams it as is instead of decoding and re-encoding every row.
    details_text = models.TextField(blank=True, default="", editable=False)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    objects: ClassVar[AuditEventQuerySet] = AuditEventQuerySet.as_manager()  # type: ignore[assignment]

    class Meta:
        ordering = ["-seq"]
        indexes = [
            models.Index(fields=["actor_label", "created_at"]),
            models.Index(fields=["resource_slug", "created_at"]),
            models.Index(fields=["target_type", "target_id"]),
        ]
        permissions = [("export_auditevent", "Can export the audit trail and see access reports")]
        verbose_name = "audit entry"
        verbose_name_plural = "audit trail"

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} by {self.actor_label}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyError("audit entries cannot be updated")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("audit entries cannot be deleted")


class StreamDestination(models.Model):
    """Where one audit stream destination stands (``apps.audit.stream``).

    ``cursor`` is the ``seq`` of the last entry the destination acknowledged: it only moves
    forward, and only after an acknowledgement, so a crash or a lost answer means the next
    batch repeats entries (with the same ``seq``), never skips one. The lease
    (``leased_until``, ``lease_owner``) lets one sender at a time work on a destination.
    Rows are created when a configured destination is first sent to, and kept when it is
    removed from ``AUDIT_STREAM`` (the admin shows it as no longer configured).
    """

    name = models.CharField(
        max_length=300, unique=True, help_text="The destination's URL without its query."
    )
    cursor = models.BigIntegerField(default=0, help_text="The last seq acknowledged.")
    acked_at = models.DateTimeField(null=True, blank=True, help_text="When the cursor last moved.")
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    refused = models.BooleanField(
        default=False, help_text="The last error was a refusal (401, 403, 413, ...), not an outage."
    )
    failures = models.PositiveIntegerField(default=0, help_text="Failed attempts in a row.")
    failing_since = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    alerted_at = models.DateTimeField(
        null=True, blank=True, help_text="When the superusers were told of the current failure."
    )
    leased_until = models.DateTimeField(null=True, blank=True, editable=False)
    lease_owner = models.CharField(max_length=64, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "audit stream destination"
        verbose_name_plural = "audit stream"

    def __str__(self) -> str:
        return self.name
