"""The only authentication backend: a verified Pomerium identity, never a password."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission
from django.db.models import QuerySet
from django.http import HttpRequest

from .assertion import Identity
from .models import User
from .roles import MANAGED_GROUP_NAMES
from .services import sync_user


class PomeriumAssertionBackend(ModelBackend):
    """Authenticates an ``Identity`` the middleware has verified.

    Permissions come only from the portal's managed role groups (``roles.ROLE_GROUPS``),
    which follow the settings: a mirrored claim group, or a permission someone attached
    to a user or to another group by hand, grants nothing.
    """

    def _get_user_permissions(self, user_obj: Any) -> QuerySet[Permission]:
        return Permission.objects.none()

    def _get_group_permissions(self, user_obj: Any) -> QuerySet[Permission]:
        return Permission.objects.filter(group__user=user_obj, group__name__in=MANAGED_GROUP_NAMES)

    def authenticate(  # type: ignore[override]
        self, request: HttpRequest | None, identity: Identity | None = None, **kwargs: Any
    ) -> User | None:
        if identity is None:  # username/password or anything else: not here
            return None
        user = sync_user(identity)
        return user if self.user_can_authenticate(user) else None
