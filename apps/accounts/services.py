"""Keeping the Django user in step with the verified assertion."""

from __future__ import annotations

from django.db import IntegrityError
from django.dispatch import Signal

from apps.audit import services as audit
from apps.audit.services import record
from apps.kit.text import hidden_problem

from . import roles
from .actions import AccountAction
from .assertion import AssertionRejected, Identity, identity_digest
from .emails import is_nfkc_normal, normalize_email
from .models import User

# Sent inside the transaction that changes a user's email (kwargs: user, old, new, actor).
# The access app moves the user's open grants to the new address in that same transaction.
email_changed = Signal()
# Sent inside the transaction that retires a look-alike account (kwargs: user, reason). The
# access app ends the account's open grants and pending requests in that same transaction.
identity_retired = Signal()


class IdentityConflict(AssertionRejected):
    """A new IdP subject claims the (normalised) email of an existing person.

    ``lookalike_email`` when one of the two addresses is written with compatibility
    characters (``emails.is_nfkc_normal``), else ``duplicate_identity``.
    """

    def __init__(self, identity: Identity, existing: User) -> None:
        lookalike = not (is_nfkc_normal(identity.email) and is_nfkc_normal(existing.email))
        super().__init__(
            "lookalike_email" if lookalike else "duplicate_identity",
            "Another portal account already uses this email address (letter case and Unicode "
            "form aside), under a different identity-provider id. The portal does not make a "
            "second person of it. If your identity provider changed, ask a portal admin to "
            "re-link your account.",
            details={
                "sub": identity.sub,
                "email": identity.email,
                "existing_user": existing.pk,
                "existing_sub": existing.username,
                "existing_email": existing.email,
            },
        )


def _displaces(identity: Identity, existing: User) -> bool:
    """Whether ``identity``'s address takes the key from ``existing``'s look-alike: an
    NFKC-normal address is never the one refused in favour of one that is not."""
    return is_nfkc_normal(identity.email) and not is_nfkc_normal(existing.email)


def _retire_lookalike(existing: User, identity: Identity) -> None:
    """Retire the look-alike account that holds ``identity``'s key (inside the sign-in's
    transaction): deactivated, its key cleared, its open grants and pending requests ended
    (``identity_retired``), audited ``user.lookalike_retired`` naming both."""
    reason = f"look-alike of {identity.email}, which signed in"
    # First, and before any audit write: receivers lock the account's requests and grants
    # (with the account's row), in the order every service takes them.
    identity_retired.send(sender=User, user=existing, reason=reason)
    existing = User.objects.select_for_update().get(pk=existing.pk)
    existing.email_key = None
    existing.is_active = False
    existing.claims_digest = ""
    existing.save(update_fields=["email_key", "is_active", "claims_digest"])
    record(
        AccountAction.USER_LOOKALIKE_RETIRED,
        target=existing,
        details={
            "retired_user": existing.pk,
            "retired_sub": existing.username,
            "retired_email": existing.email,
            "by_sub": identity.sub,
            "by_email": identity.email,
        },
    )


def _conflicting_user(key: str, sub: str) -> User | None:
    return User.objects.filter(email_key=key).exclude(username=sub).first()


def sync_user(identity: Identity, user: User | None = None) -> User:
    """Return the user for ``identity``, created or updated to match it.

    Keyed on the stable ``sub``; one person, one normalised email (``User.email_key``).
    Writes nothing (one query at most) while the assertion's email, name, groups and the
    resulting roles are unchanged. Otherwise, in one transaction: updates the row, mirrors
    the groups claim into prefixed Django groups (plus the managed role groups), sets
    staff/superuser from the admin role, and audits each kind of change
    (``user.created``, ``user.updated``, ``user.groups_changed``, ``user.admin_granted`` /
    ``user.admin_revoked``). An email change sends ``email_changed`` in the same
    transaction, so the user's open grants follow it.

    Raises ``IdentityConflict`` (nothing written) when the normalised email belongs to a
    person with another ``sub``: a look-alike account is refused, not made a second person.
    The one exception: an NFKC-normal address is never refused in favour of a look-alike
    written with compatibility characters. That look-alike account is retired instead (see
    ``_retire_lookalike``) and this person signs in.
    """
    user_roles = roles.roles_for(identity.email, identity.groups)
    digest = identity_digest(identity, roles=user_roles)
    key = normalize_email(identity.email)
    if user is None:
        user = User.objects.filter(username=identity.sub).first()
    if user is not None and user.claims_digest == digest and user.email_key == key:
        return user
    try:
        with audit.atomic():
            return _sync_locked(identity, user_roles, digest, key)
    except IntegrityError:
        # Two look-alike first sign-ins at once: the unique key let one of them in.
        existing = _conflicting_user(key, identity.sub)
        if existing is None:
            raise
        raise IdentityConflict(identity, existing) from None


def _sync_locked(identity: Identity, user_roles: tuple[str, ...], digest: str, key: str) -> User:
    existing = _conflicting_user(key, identity.sub)
    if existing is not None:
        if not _displaces(identity, existing):
            raise IdentityConflict(identity, existing)
        _retire_lookalike(existing, identity)
    user, created = User.objects.select_for_update().get_or_create(
        username=identity.sub,
        defaults={"email": identity.email, "email_key": key, "display_name": identity.name},
    )
    if user.claims_digest == digest and user.email_key == key:  # another request got here first
        return user
    before_groups = user.group_names()
    was_admin = user.is_superuser
    old_email = user.email
    changes = {}
    for field, value in (("email", identity.email), ("display_name", identity.name)):
        if getattr(user, field) != value:
            changes[field] = [getattr(user, field), value]
            setattr(user, field, value)
    user.email_key = key
    if created:
        user.set_unusable_password()  # there is no password sign-in, ever
    is_admin = roles.ADMIN in user_roles
    user.is_superuser = is_admin
    user.is_staff = bool(user_roles)
    user.claims_digest = digest
    user.save()

    group_objs = [roles.claim_group(name) for name in sorted(set(identity.groups))]
    for role in (roles.APPROVER, roles.AUDITOR):
        if role in user_roles:
            group_objs.append(roles.role_group(role))
    user.groups.set(group_objs)
    after_groups = set(identity.groups)
    if not created and "email" in changes:
        # Before the first audit write: receivers lock rows (the user's grants), and row
        # locks come before the chain head's lock in every transaction.
        email_changed.send(sender=User, user=user, old=old_email, new=user.email, actor=user)
    if created:
        record(
            AccountAction.USER_CREATED,
            actor=user,
            target=user,
            details={
                "email": identity.email,
                "name": identity.name,
                "groups": sorted(after_groups),
            },
        )
    elif changes:
        record(AccountAction.USER_UPDATED, actor=user, target=user, details={"changes": changes})
    if not created and before_groups != after_groups:
        record(
            AccountAction.USER_GROUPS_CHANGED,
            actor=user,
            target=user,
            details={
                "added": sorted(after_groups - before_groups),
                "removed": sorted(before_groups - after_groups),
            },
        )
    if is_admin and not was_admin:
        record(
            AccountAction.USER_ADMIN_GRANTED,
            actor=user,
            target=user,
            details={"roles": list(user_roles)},
        )
    elif was_admin and not is_admin:
        record(
            AccountAction.USER_ADMIN_REVOKED,
            actor=user,
            target=user,
            details={"roles": list(user_roles)},
        )
    return user


def relink_user(user: User, *, new_sub: str, actor: User, reason: str) -> User:
    """Point a person at a new IdP subject (an identity-provider migration); admins only.

    The next assertion with ``new_sub`` signs in as this person, with their history and
    grants; the old subject no longer does. Audited as ``user.relinked`` with both ids.
    """
    new_sub = (new_sub or "").strip()
    reason = (reason or "").strip()
    if not actor.is_superuser:
        raise PermissionError("Only portal admins may re-link accounts.")
    if not new_sub or len(new_sub) > 150:
        raise ValueError("Give the new identity-provider subject (at most 150 characters).")
    if not reason:
        raise ValueError("Say why the account is re-linked.")
    for name, text in (("subject", new_sub), ("reason", reason)):
        problem = hidden_problem(text)
        if problem is not None:
            raise ValueError(f"The {name} {problem}.")
    with audit.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        if user.username == new_sub:
            raise ValueError("The account already uses that subject.")
        if User.objects.filter(username=new_sub).exists():
            raise ValueError("Another account already uses that subject.")
        old_sub = user.username
        user.username = new_sub
        user.claims_digest = ""  # the next assertion re-derives everything
        user.save(update_fields=["username", "claims_digest"])
        record(
            AccountAction.USER_RELINKED,
            actor=actor,
            target=user,
            details={"old_sub": old_sub, "new_sub": new_sub, "reason": reason},
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
    with audit.atomic():
        User.objects.filter(pk=user.pk).update(time_zone=time_zone, notify_expiry=notify_expiry)
        user.time_zone, user.notify_expiry = time_zone, notify_expiry
        record(AccountAction.USER_UPDATED, actor=user, target=user, details={"changes": changes})
    return user
