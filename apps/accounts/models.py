"""Users come only from verified Pomerium assertions; there are no passwords."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractUser
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

            cut = len(CLAIM_GROUP_PREFIX)
            cached = frozenset(
                name[cut:]
                for name in self.groups.filter(name__startswith=CLAIM_GROUP_PREFIX).values_list(
                    "name", flat=True
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
