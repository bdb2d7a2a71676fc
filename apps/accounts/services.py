"""Keeping the Django user in step with the verified assertion."""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.db import transaction

from apps.audit.models import AuditAction
from apps.audit.services import record

from . import roles
from .assertion import Identity, identity_digest
from .models import User


def sync_user(identity: Identity, user: User | None = None) -> User:
    """Return the user for ``identity``, created or updated to match it.

    Keyed on the stable ``sub``. Writes nothing (one query at most) while the assertion's
    email, name, groups and the resulting roles are unchanged. Otherwise, in one
    transaction: updates the row, mirrors the groups claim into Django groups (plus the
    managed role groups), sets staff/superuser from the admin role, and audits each kind of
    change (``user.created``, ``user.updated``, ``user.groups_changed``,
    ``user.admin_granted`` / ``user.admin_revoked``).
    """
    user_roles = roles.roles_for(identity.email, identity.groups)
    digest = identity_digest(identity, roles=user_roles)
    if user is None:
        user = User.objects.filter(username=identity.sub).first()
    if user is not None and user.claims_digest == digest:
        return user
    with transaction.atomic():
        user, created = User.objects.select_for_update().get_or_create(
            username=identity.sub,
            defaults={"email": identity.email, "display_name": identity.name},
        )
        if user.claims_digest == digest:  # another request got here first
            return user
        before_groups = user.group_names()
        was_admin = user.is_superuser
        changes = {}
        for field, value in (("email", identity.email), ("display_name", identity.name)):
            if getattr(user, field) != value:
                changes[field] = [getattr(user, field), value]
                setattr(user, field, value)
        if created:
            user.set_unusable_password()  # there is no password sign-in, ever
        is_admin = roles.ADMIN in user_roles
        user.is_superuser = is_admin
        user.is_staff = bool(user_roles)
        user.claims_digest = digest
        user.save()

        wanted_groups = set(identity.groups)
        group_objs = [Group.objects.get_or_create(name=name)[0] for name in sorted(wanted_groups)]
        for role in (roles.APPROVER, roles.AUDITOR):
            if role in user_roles:
                group_objs.append(roles.role_group(role))
        user.groups.set(group_objs)
        after_groups = {g.name for g in group_objs}

        if created:
            record(
                AuditAction.USER_CREATED,
                actor=user,
                target=user,
                details={
                    "email": identity.email,
                    "name": identity.name,
                    "groups": sorted(after_groups),
                },
            )
        elif changes:
            record(AuditAction.USER_UPDATED, actor=user, target=user, details={"changes": changes})
        if not created and before_groups != after_groups:
            record(
                AuditAction.USER_GROUPS_CHANGED,
                actor=user,
                target=user,
                details={
                    "added": sorted(after_groups - before_groups),
                    "removed": sorted(before_groups - after_groups),
                },
            )
        if is_admin and not was_admin:
            record(
                AuditAction.USER_ADMIN_GRANTED,
                actor=user,
                target=user,
                details={"roles": list(user_roles)},
            )
        elif was_admin and not is_admin:
            record(
                AuditAction.USER_ADMIN_REVOKED,
                actor=user,
                target=user,
                details={"roles": list(user_roles)},
            )
    return user


def update_preferences(user: User, *, time_zone: str, notify_expiry: bool) -> User:
    """Save a person's own preferences; audits ``user.updated`` with what changed (if anything)."""
    changes = {
        name: [getattr(user, name), value]
        for name, value in (("time_zone", time_zone), ("notify_expiry", notify_expiry))
        if getattr(user, name) != value
    }
    if not changes:
        return user
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(time_zone=time_zone, notify_expiry=notify_expiry)
        user.time_zone, user.notify_expiry = time_zone, notify_expiry
        record(AuditAction.USER_UPDATED, actor=user, target=user, details={"changes": changes})
    return user
