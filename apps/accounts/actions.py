"""Audit actions the accounts app writes beyond the original ones (``AuditAction``),
registered with the audit registry in ``AccountsConfig.ready()``."""

from django.db import models


class AccountAction(models.TextChoices):
    USER_LOOKALIKE_RETIRED = (
        "user.lookalike_retired",
        "Look-alike account retired for the real address",
    )
