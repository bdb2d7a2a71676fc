"""Audit actions the Zero sync writes beyond the historic ones in ``AuditAction``.

Registered with ``apps.audit.actions`` when the app loads (``ZeroConfig.ready()``).
"""

from __future__ import annotations

from django.db import models


class ZeroAction(models.TextChoices):
    GRANT_RULE_REFUSED = (
        "zero.grant_rule_refused",
        "Zero: a grant's rule left out of the policy (Pomerium refuses it)",
    )
