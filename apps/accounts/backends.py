"""The only authentication backend: a verified Pomerium identity, never a password."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from .assertion import Identity
from .models import User
from .permissions import role_permission_filter
from .roles import ROLE_GROUPS, ROLE_PERMISSIONS
from .services import sync_user


class PomeriumAssertionBackend(ModelBackend):
    """Authenticates an ``Identity`` the middleware has verified.

    Permissions come only from the portal's managed role groups (``roles.ROLE_GROUPS``),
    which follow the settings, and only those the code gives each role
    (``roles.ROLE_PERMISSIONS``): a mirrored claim group, or a permission someone attached
    to a user or to any group by hand, grants nothing.
    """

    def _get_user_permissions(self, user_obj: Any) -> QuerySet[Permission]:
        return Permission.objects.none()

    def _get_group_permissions(self, user_obj: Any) -> QuerySet[Permission]:
        # What the code grants each role group the user is in, never more: a permission
        # attached to a role group by hand grants nothing (apps/accounts/permissions.py).
        # One filter() call, so both conditions are on the same group row.
        rights = {name: ROLE_PERMISSIONS[role] for role, name in ROLE_GROUPS.items()}
        return Permission.objects.filter(Q(group__user=user_obj) & role_permission_filter(rights))

    def authenticate(  # type: ignore[override]
        self, request: HttpRequest | None, identity: Identity | None = None, **kwargs: Any
    ) -> User | None:
        if identity is None:  # username/password or anything else: not here
            return None
        user = sync_user(identity)
        return user if self.user_can_authenticate(user) else None
