"""The only authentication backend: a verified Pomerium identity, never a password."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest

from .assertion import Identity
from .models import User
from .services import sync_user


class PomeriumAssertionBackend(ModelBackend):
    """Authenticates an ``Identity`` the middleware has verified; permissions as ModelBackend."""

    def authenticate(  # type: ignore[override]
        self, request: HttpRequest | None, identity: Identity | None = None, **kwargs: Any
    ) -> User | None:
        if identity is None:  # username/password or anything else: not here
            return None
        user = sync_user(identity)
        return user if self.user_can_authenticate(user) else None
