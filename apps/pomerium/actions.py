"""The audit actions the Zero sync writes, registered with ``apps.audit.actions`` when the
app loads (``PomeriumConfig.ready()``). Codes never change once written: older trails keep
verifying."""

from __future__ import annotations

from django.db import models


class ZeroAction(models.TextChoices):
    ZERO_POLICY_CREATED = "zero.policy_created", "Zero policy created"
    ZERO_POLICY_WRITTEN = "zero.policy_written", "Zero policy written"
    ZERO_DRIFT_REPAIRED = "zero.drift_repaired", "Zero drift repaired"
    ZERO_SYNC_FAILED = "zero.sync_failed", "Zero sync failed"
    ZERO_CHANGESET_APPLIED = "zero.changeset_applied", "Zero changeset applied"
    ZERO_CHANGESET_WAITING = "zero.changeset_waiting", "Zero changeset left for a human to apply"
    ZERO_WRITE_CONFIRMED = "zero.write_confirmed_late", "Zero write confirmed after a lost answer"
    ZERO_REMOVAL_OVERDUE = "zero.removal_overdue", "Revocation not yet enforced in Pomerium"
    GRANT_RULE_REFUSED = (
        "zero.grant_rule_refused",
        "Zero: a grant's rule left out of the policy (Pomerium refuses it)",
    )
