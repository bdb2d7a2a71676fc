"""Refusals for want of a portal role, raised where the role is checked.

The trail knows no roles (they belong to ``apps.accounts``); it only says which one a
page needs. The 403 page (``apps.access.errors``) names it and who grants it.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied

# The portal's roles, as ``apps.accounts.roles`` names them.
ADMIN = "admin"
APPROVER = "approver"
AUDITOR = "auditor"


class RoleRequired(PermissionDenied):
    """``doing`` needs ``role``: a routine 403, answered with a page that says so."""

    def __init__(self, role: str, doing: str) -> None:
        super().__init__(f"{doing} is for the {role} role.")
        self.role = role
        self.doing = doing
