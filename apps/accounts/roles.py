"""Portal roles, derived from the assertion's groups and email on every change.

* admin    (PORTAL_ADMIN_GROUPS / PORTAL_ADMIN_EMAILS): staff + superuser.
* approver (PORTAL_APPROVER_GROUPS): staff, may decide requests and manage grants in the
  admin. *Which* requests is still per resource: the services check the resource's own
  approver groups.
* auditor  (PORTAL_AUDITOR_GROUPS): staff, may read the trail, export it, see reports.

Approver and auditor rights are Django permissions held by one managed group per role,
so they show in the admin like any other permission and leave with the role.

Roles come from the settings only. The assertion's groups are mirrored into Django groups
under ``CLAIM_GROUP_PREFIX`` ("idp:"), so a claim group can never share a name with a
managed role group (an IdP group called "jitportal: auditors" is stored as
"idp:jitportal: auditors"), and the authentication backend counts permissions of the
managed role groups only: a mirrored group grants nothing, whatever is attached to it.
A name too long for a Django group is stored under a digest name (``claim_group_name``)
with its original beside it; everything that matches groups reads the originals
(``User.group_names``).
Email lists compare normalised addresses (``emails.normalize_email``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group

from .emails import is_nfkc_normal, normalize_email
from .models import ClaimGroup
from .permissions import set_group_permissions

ADMIN = "admin"
APPROVER = "approver"
AUDITOR = "auditor"

ROLE_GROUPS = {APPROVER: "jitportal: approvers", AUDITOR: "jitportal: auditors"}
MANAGED_GROUP_NAMES = frozenset(ROLE_GROUPS.values())
CLAIM_GROUP_PREFIX = "idp:"

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


# Django's Group.name holds 150 characters. A claim group name of up to _PLAIN_MAX is kept
# as it is after the prefix (at most 149 in all); a longer one is cut and ends in "~" and its
# SHA-256, exactly 150 in all: no plain name can ever equal a digest one.
GROUP_NAME_MAX = 150
_PLAIN_MAX = GROUP_NAME_MAX - len(CLAIM_GROUP_PREFIX) - 1
_DIGEST_LENGTH = 64
_KEPT = GROUP_NAME_MAX - len(CLAIM_GROUP_PREFIX) - 1 - _DIGEST_LENGTH


def claim_group_name(name: str) -> str:
    """The name of the Django group a claim group is mirrored into: bounded, unique, stable."""
    if len(name) <= _PLAIN_MAX:
        return CLAIM_GROUP_PREFIX + name
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{CLAIM_GROUP_PREFIX}{name[:_KEPT]}~{digest}"


def claim_group(name: str) -> Group:
    """The Django group a claim group is mirrored into, created on first use. When its name
    is a digest, the original is kept beside it (``ClaimGroup``)."""
    group, _ = Group.objects.get_or_create(name=claim_group_name(name))
    if len(name) > _PLAIN_MAX:
        ClaimGroup.objects.get_or_create(group=group, defaults={"name": name})
    return group


def _emails(setting: str) -> set[str]:
    return {normalize_email(e) for e in getattr(settings, setting, [])}


def roles_for(email: str, groups: Iterable[str]) -> tuple[str, ...]:
    """The portal roles of someone with this email and these claim groups (settings only)."""
    member = set(groups)
    # A look-alike address (compatibility characters: "oﬃce-admin@" for "office-admin@")
    # never holds the role listed for the address it imitates.
    key = normalize_email(email) if is_nfkc_normal(email) else ""
    roles = []
    if member & set(settings.PORTAL_ADMIN_GROUPS) or key in _emails("PORTAL_ADMIN_EMAILS"):
        roles.append(ADMIN)
    if member & set(settings.PORTAL_APPROVER_GROUPS) or key in _emails("PORTAL_APPROVER_EMAILS"):
        roles.append(APPROVER)
    if member & set(settings.PORTAL_AUDITOR_GROUPS) or key in _emails("PORTAL_AUDITOR_EMAILS"):
        roles.append(AUDITOR)
    return tuple(roles)


def holds(user: Any, *wanted: str) -> bool:
    """Whether an active user holds one of ``wanted`` (or is an admin), read from the settings.

    Privileged views call this in addition to the permission check, so a role can only
    come from ``PORTAL_*_GROUPS`` / ``PORTAL_*_EMAILS`` as the user is now.
    """
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    current = roles_for(user.email, user.group_names())
    return ADMIN in current or any(role in current for role in wanted)


def role_group(role: str) -> Group:
    """The managed group of ``role``, its permissions made exactly the code's (a change is
    audited ``group.permissions_changed``, via "role sync"). Inside a transaction."""
    group, _ = Group.objects.get_or_create(name=ROLE_GROUPS[role])
    set_group_permissions(group, ROLE_PERMISSIONS[role], actor=None, via="role sync")
    return group


def may_use_admin(request: Any) -> bool:
    """The admin's door: an active staff member who holds a portal role right now."""
    user = request.user
    return bool(user.is_active and user.is_staff and holds(user, APPROVER, AUDITOR))


EXPORT_PERMISSION = "audit.export_auditevent"
REPORTS_PERMISSION = "audit.view_auditevent"


def may_export(user: Any) -> bool:
    """Who exports the audit trail: auditors and superusers, the permission *and* the role,
    checked each time. The audit app's pages ask this through the check the accounts app
    registers with it (``apps.audit.views.may_export``)."""
    if not (getattr(user, "is_authenticated", False) and user.is_active):
        return False
    return user.has_perm(EXPORT_PERMISSION) and holds(user, AUDITOR)


def may_see_reports(request: Any) -> bool:
    """Who sees the access reports: whoever may read the audit trail and export it
    (auditors, superusers)."""
    user = request.user
    return bool(user.has_perm(REPORTS_PERMISSION)) and may_export(user)
