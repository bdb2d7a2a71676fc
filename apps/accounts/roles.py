"""Portal roles, derived from the assertion's groups and email on every change.

* admin    (PORTAL_ADMIN_GROUPS / PORTAL_ADMIN_EMAILS): staff + superuser.
* approver (PORTAL_APPROVER_GROUPS): staff, may decide requests and manage grants in the
  admin. *Which* requests is still per resource: the services check the resource's own
  approver groups.
* auditor  (PORTAL_AUDITOR_GROUPS): staff, may read the trail, export it, see reports.

Approver and auditor rights are Django permissions held by one managed group per role,
so they show in the admin like any other permission and leave with the role.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth.models import Group, Permission

ADMIN = "admin"
APPROVER = "approver"
AUDITOR = "auditor"

ROLE_GROUPS = {APPROVER: "jitportal: approvers", AUDITOR: "jitportal: auditors"}

ROLE_PERMISSIONS = {
    APPROVER: (
        "access.view_resource",
        "access.view_accessrequest",
        "access.decide_accessrequest",
        "access.view_grant",
        "access.revoke_grant",
        "access.extend_grant",
        "access.review_grant",
    ),
    AUDITOR: (
        "access.view_resource",
        "access.view_accessrequest",
        "access.view_grant",
        "audit.view_auditevent",
        "audit.export_auditevent",
    ),
}


def roles_for(email: str, groups: Iterable[str]) -> tuple[str, ...]:
    member = set(groups)
    roles = []
    if member & set(settings.PORTAL_ADMIN_GROUPS) or email in settings.PORTAL_ADMIN_EMAILS:
        roles.append(ADMIN)
    if member & set(settings.PORTAL_APPROVER_GROUPS):
        roles.append(APPROVER)
    if member & set(settings.PORTAL_AUDITOR_GROUPS):
        roles.append(AUDITOR)
    return tuple(roles)


def role_group(role: str) -> Group:
    group, _ = Group.objects.get_or_create(name=ROLE_GROUPS[role])
    wanted = set(ROLE_PERMISSIONS[role])
    have = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()}
    if have != wanted:
        perms = [
            p
            for p in Permission.objects.select_related("content_type")
            if f"{p.content_type.app_label}.{p.codename}" in wanted
        ]
        group.permissions.set(perms)
    return group
