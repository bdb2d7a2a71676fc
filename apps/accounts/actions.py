"""Audit actions the accounts app writes beyond the original ones (``AuditAction``),
registered with the audit registry in ``AccountsConfig.ready()``."""

from django.db import models


class AccountAction(models.TextChoices):
    GROUP_PERMISSIONS_CHANGED = "group.permissions_changed", "Group permissions changed"
    USER_LOOKALIKE_RETIRED = (
        "user.lookalike_retired",
        "Look-alike account retired for the real address",
    )
