"""What each portal role may do comes from code (``roles.ROLE_PERMISSIONS``), and every
change to any group's permissions is audited.

Three layers, because ``Group.permissions`` can be changed from many places:

* **Authority**: the authentication backend grants a role group's member only the
  permissions the code lists for that role (``role_permission_filter``). A permission
  attached to a role group by any means (the shell, SQL, a migration) grants nothing.
* **The service**: ``set_group_permissions`` is the portal's one way to change a group's
  permissions (``roles.role_group`` keeps each role group equal to the code). It audits
  ``group.permissions_changed`` in the caller's unit of work, like every service.
* **The backstop**: a change made elsewhere through the ORM (the shell, a third-party
  admin, a data migration) reaches ``m2m_changed``; ``audit_outside_changes`` records it
  (``via: "outside the portal's services"``) in its own entry. Raw SQL and bulk writes to
  the through table send no signal: the first layer is why they grant nothing anyway.

The admin shows groups read-only (``admin.GroupAdmin``): role groups take their rights
from code, claim groups their names from the identity provider, and no other group grants
anything.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any

from django.contrib.auth.models import Group, Permission
from django.db.models import Q

from apps.audit.services import record, record_now

from .actions import AccountAction

_IN_SERVICE: ContextVar[bool] = ContextVar("group_permissions_service", default=False)


def code(permission: Permission) -> str:
    return f"{permission.content_type.app_label}.{permission.codename}"


def permission_filter(codes: Iterable[str]) -> Q:
    """Permissions named by "app_label.codename" codes (none: matches nothing)."""
    wanted = Q(pk__in=[])
    for item in codes:
        app_label, codename = item.split(".", 1)
        wanted |= Q(content_type__app_label=app_label, codename=codename)
    return wanted


def role_permission_filter(role_codes: Mapping[str, Iterable[str]]) -> Q:
    """For a ``Permission`` query: the permissions of each role group (by name) that the
    code grants that role."""
    allowed = Q(pk__in=[])
    for group_name, codes in role_codes.items():
        allowed |= Q(group__name=group_name) & permission_filter(codes)
    return allowed


@contextlib.contextmanager
def _service() -> Iterator[None]:
    token = _IN_SERVICE.set(True)
    try:
        yield
    finally:
        _IN_SERVICE.reset(token)


def set_group_permissions(group: Group, codes: Iterable[str], *, actor: Any, via: str) -> bool:
    """Make ``group``'s permissions exactly ``codes`` ("app_label.codename"); audit what
    changed as ``group.permissions_changed`` (in the caller's transaction). Returns whether
    anything changed."""
    wanted = set(codes)
    have = {code(p) for p in group.permissions.select_related("content_type")}
    if have == wanted:
        return False
    perms = list(Permission.objects.filter(permission_filter(wanted)))
    with _service():
        group.permissions.set(perms)
    record(
        AccountAction.GROUP_PERMISSIONS_CHANGED,
        actor=actor,
        details={
            "group": group.name,
            "added": sorted(wanted - have),
            "removed": sorted(have - wanted),
            "via": via,
        },
    )
    return True


def _codes(pks: Iterable[int]) -> list[str]:
    return sorted(
        code(p) for p in Permission.objects.filter(pk__in=list(pks)).select_related("content_type")
    )


def audit_outside_changes(
    sender: Any,
    *,
    instance: Any,
    action: str,
    reverse: bool,
    pk_set: set[int] | None,
    **kwargs: Any,
) -> None:
    """``m2m_changed`` of ``Group.permissions``: record a change no service made."""
    if _IN_SERVICE.get():
        return
    if action == "pre_clear":
        # The rows are gone by post_clear: remember what is about to be removed.
        if reverse:
            instance._cleared_groups = list(instance.group_set.values_list("pk", flat=True))
        else:
            instance._cleared_permissions = list(instance.permissions.values_list("pk", flat=True))
        return
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    removed = action != "post_add"
    if reverse:  # permission.group_set.add(groups...)
        groups = list(
            Group.objects.filter(pk__in=list(pk_set or getattr(instance, "_cleared_groups", [])))
        )
        changes = [(g, [code(instance)]) for g in groups]
    else:
        pks = pk_set if action != "post_clear" else getattr(instance, "_cleared_permissions", [])
        changes = [(instance, _codes(pks or []))]
    for group, codes in changes:
        if not codes:
            continue
        record_now(
            AccountAction.GROUP_PERMISSIONS_CHANGED,
            details={
                "group": group.name,
                "added": [] if removed else codes,
                "removed": codes if removed else [],
                "via": "outside the portal's services",
            },
        )
