"""The audit actions the accounts app writes (identity, users, groups), registered with
the audit registry in ``AccountsConfig.ready()``. Codes never change once written: older
trails keep verifying."""

from django.db import models


class AccountAction(models.TextChoices):
    ASSERTION_REJECTED = "auth.assertion_rejected", "Assertion rejected"
    USER_CREATED = "user.created", "User first seen"
    USER_UPDATED = "user.updated", "User email or name changed"
    USER_GROUPS_CHANGED = "user.groups_changed", "User groups changed"
    USER_ADMIN_GRANTED = "user.admin_granted", "Admin rights granted"
    USER_ADMIN_REVOKED = "user.admin_revoked", "Admin rights removed"
    USER_RELINKED = "user.relinked", "User re-linked to a new IdP subject"
    GROUP_PERMISSIONS_CHANGED = "group.permissions_changed", "Group permissions changed"
    USER_LOOKALIKE_RETIRED = (
        "user.lookalike_retired",
        "Look-alike account retired for the real address",
    )
