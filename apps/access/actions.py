"""Audit actions the access app writes beyond the original ones (``AuditAction``), registered
with the audit registry in ``AccessConfig.ready()``."""

from django.db import models


class AccessAction(models.TextChoices):
    BREAK_GLASS_REFUSED = (
        "grant.break_glass_refused",
        "Break-glass refused: earlier activations not yet reviewed",
    )
