"""Users come only from verified Pomerium assertions; there are no passwords."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import AbstractUser, Group
from django.db import models
from django.db.models import ProtectedError
from django.db.models.signals import m2m_changed, pre_delete
from django.dispatch import receiver

# Where an instance keeps its group names once read (see ``User.group_names``).
_GROUPS_CACHE = "_group_names_cache"


class User(AbstractUser):
    """A person Pomerium vouched for.

    ``username`` holds the identity provider's stable subject (the assertion's ``sub``);
    email and name are kept current from each new assertion. ``claims_digest`` lets the
    middleware skip all writes while nothing in the assertion changed.
    """

    # The normalised email (emails.normalize_email): one person, one address, whatever its
    # case or Unicode form. ``email`` keeps the address exactly as the assertion carried
    # it, because Pomerium's rules compare that string exactly. Null only for rows that
    # predate the key and collided with another user's; they are refused until re-linked.
    email_key = models.CharField(max_length=254, unique=True, null=True, blank=True, editable=False)
    display_name = models.CharField(max_length=200, blank=True)
    claims_digest = models.CharField(max_length=64, blank=True, editable=False)
    time_zone = models.CharField(
        max_length=64, blank=True, help_text="IANA zone for showing times; empty = browser's."
    )
    notify_expiry = models.BooleanField(
        default=True, help_text="Email me before one of my grants ends."
    )

    class Meta:
        verbose_name = "user"
        verbose_name_plural = "users"

    def __str__(self) -> str:
        return self.email or self.display_name or self.username

    def group_names(self) -> set[str]:
        """Names of the assertion's groups (mirrored under a prefix; role groups excluded).

        Read once per instance: a page asks the visibility rules many times, and the
        request's user is one instance. Any change of this instance's groups (the identity
        sync sets them) and ``refresh_from_db`` forget the cached names.
        """
        cached: frozenset[str] | None = self.__dict__.get(_GROUPS_CACHE)
        if cached is None:
            from .roles import CLAIM_GROUP_PREFIX

            # A name too long for a Django group is kept in full on its ClaimGroup row.
            cached = _claim_names(
                self.groups.filter(name__startswith=CLAIM_GROUP_PREFIX).values_list(
                    "name", "claim__name"
                )
            )
            self.__dict__[_GROUPS_CACHE] = cached
        return set(cached)

    def refresh_from_db(self, *args: Any, **kwargs: Any) -> None:
        self.__dict__.pop(_GROUPS_CACHE, None)
        super().refresh_from_db(*args, **kwargs)

    def get_short_name(self) -> str:
        # The admin greets with this; the IdP subject in username means nothing to people.
        return self.label

    def get_full_name(self) -> str:
        return self.display_name or self.email

    @property
    def label(self) -> str:
        return self.display_name or self.email or self.username


class ClaimGroup(models.Model):
    """The identity provider's name of a claim group whose Django group name is a digest.

    Claim groups are mirrored into Django groups (``roles.claim_group``); a name too long
    for ``Group.name`` (150 characters) gets a bounded, unique, stable Django name ending in
    its SHA-256, and its original is kept here, for ``User.group_names`` and for display.
    """

    group = models.OneToOneField(
        Group, on_delete=models.CASCADE, primary_key=True, related_name="claim"
    )
    name = models.TextField(help_text="The group's name as the identity provider sends it.")

    def __str__(self) -> str:
        return self.name


def _claim_names(rows: Iterable[tuple[str, str | None]]) -> frozenset[str]:
    """The identity provider's names of claim groups, from (Django name, ClaimGroup name)
    pairs: the kept original where the Django name is a digest, else the name unprefixed."""
    from .roles import CLAIM_GROUP_PREFIX

    cut = len(CLAIM_GROUP_PREFIX)
    return frozenset(
        original or name[cut:] for name, original in rows if name.startswith(CLAIM_GROUP_PREFIX)
    )


def load_group_names(users: Iterable[User]) -> None:
    """Read the group names of many people in one query, so that ``group_names()`` on each
    of these instances asks the database nothing (a page deciding for many requests)."""
    from .roles import CLAIM_GROUP_PREFIX

    people: dict[int, list[User]] = {}
    for user in users:
        if _GROUPS_CACHE not in user.__dict__:
            people.setdefault(user.pk, []).append(user)  # one person may come as many rows
    if not people:
        return
    found: dict[int, list[tuple[str, str | None]]] = {pk: [] for pk in people}
    rows = User.groups.through.objects.filter(
        user_id__in=list(people), group__name__startswith=CLAIM_GROUP_PREFIX
    ).values_list("user_id", "group__name", "group__claim__name")
    for user_id, name, original in rows:
        found[user_id].append((name, original))
    for pk, instances in people.items():
        names = _claim_names(found[pk])
        for user in instances:
            user.__dict__[_GROUPS_CACHE] = names


@receiver(m2m_changed, sender=User.groups.through)
def _forget_group_names(sender: Any, instance: Any, action: str, **kwargs: Any) -> None:
    """A change of a user's groups drops the names that instance had cached."""
    instance.__dict__.pop(_GROUPS_CACHE, None)


@receiver(pre_delete, sender=User)
def _keep_people_the_trail_names(sender: Any, instance: User, **kwargs: Any) -> None:
    """People are never deleted while the audit trail names them (every person it ever
    saw): deactivate them instead. Checked for every delete, whatever its path."""
    from apps.audit.names import mentions

    if mentions("accounts.user", instance.pk, actor_id=instance.pk, actor_label=instance.email):
        raise ProtectedError(
            f"{instance} is named in the audit trail: deactivate the account, do not delete it.",
            {instance},
        )
