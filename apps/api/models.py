"""Idempotency keys of ``POST /api/v1/requests``.

A key is scoped to the person who sent it and remembered with the request it created, in
the same transaction, so a retried POST finds it and answers with that request instead of
filing a second one. The fingerprint is the SHA-256 of the canonical request body: the
same key with another body is refused (422 ``idempotency_key_reused``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.access.models import AccessRequest

MAX_KEY_LENGTH = 200


class IdempotencyKey(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=MAX_KEY_LENGTH)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the canonical body.")
    access_request = models.ForeignKey(AccessRequest, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="one_idempotency_key_per_user")
        ]

    def __str__(self) -> str:
        return f"{self.key} → request #{self.access_request_id}"
