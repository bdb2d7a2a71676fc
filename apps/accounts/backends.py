"""The only authentication backend: a verified Pomerium identity, never a password."""

from __future__ import annotations

import functools
from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission
from django.core.exceptions import ImproperlyConfigured
from django.db import connections, router
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from .assertion import Identity
from .models import User
from .permissions import role_permission_filter
from .roles import ROLE_GROUPS, ROLE_PERMISSIONS
from .services import sync_user

# A primary key no person has: the placeholder in the compiled permission query.
_NOBODY = -7_777_777


def _role_rights() -> dict[str, tuple[str, ...]]:
    """Role group name -> the permissions the code gives that role."""
    return {name: tuple(ROLE_PERMISSIONS[role]) for role, name in ROLE_GROUPS.items()}


def _role_permissions(person: Any, rights: dict[str, tuple[str, ...]]) -> QuerySet[Permission]:
    """What the code grants each role group ``person`` is in, never more: a permission
    attached to a role group by hand grants nothing (apps/accounts/permissions.py). One
    filter() call, so both conditions are on the same group row."""
    return Permission.objects.filter(Q(group__user=person) & role_permission_filter(rights))


@functools.lru_cache(maxsize=8)
def _compiled_group_permissions(
    alias: str, rights: tuple[tuple[str, tuple[str, ...]], ...]
) -> tuple[str, tuple[Any, ...], int]:
    query = (
        _role_permissions(User(pk=_NOBODY), dict(rights))
        .using(alias)
        .values_list("content_type__app_label", "codename")
        .order_by()
    )
    sql, params = query.query.get_compiler(using=alias).as_sql()
    places = [i for i, value in enumerate(params) if value == _NOBODY]
    if len(places) != 1:  # pragma: no cover - Django wrote the query another way
        raise ImproperlyConfigured("the role permission query does not name its person once")
    return sql, tuple(params), places[0]


def _group_permission_sql(alias: str) -> tuple[str, list[Any], int]:
    """The role permission query's SQL for the database ``alias`` and the code's rights as
    they are now, its parameters (a fresh list) and the index of the person's primary key
    among them."""
    sql, params, at = _compiled_group_permissions(alias, tuple(_role_rights().items()))
    return sql, list(params), at


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
        return _role_permissions(user_obj, _role_rights())

    def get_group_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        """``ModelBackend``'s answer, from the SQL of ``_role_permissions`` compiled once per
        process, database and set of role rights instead of on every request.

        Building and compiling that query (a dozen role rights) cost about 1.7 ms of CPU on
        every admin page; running it, 0.05 ms. The SQL is Django's own for this very query,
        compiled for a person who cannot exist and run with the reader's primary key in
        that one parameter, so the rule keeps its one home and its one query.
        """
        if obj is not None or not user_obj.is_active or user_obj.is_anonymous:
            return set()
        if user_obj.is_superuser:  # every permission: Django's own path
            return super().get_group_permissions(user_obj, obj)
        cached: set[str] | None = getattr(user_obj, "_group_perm_cache", None)
        if cached is None:
            alias = router.db_for_read(Permission)
            sql, params, at = _group_permission_sql(alias)
            params[at] = user_obj.pk
            with connections[alias].cursor() as cursor:
                cursor.execute(sql, params)
                cached = {f"{app_label}.{codename}" for app_label, codename in cursor.fetchall()}
            user_obj._group_perm_cache = cached
        return cached

    def authenticate(  # type: ignore[override]
        self, request: HttpRequest | None, identity: Identity | None = None, **kwargs: Any
    ) -> User | None:
        if identity is None:  # username/password or anything else: not here
            return None
        user = sync_user(identity)
        return user if self.user_can_authenticate(user) else None
