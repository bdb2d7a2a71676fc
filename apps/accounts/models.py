"""Users come only from verified Pomerium assertions; there are no passwords."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """A person Pomerium vouched for.

    ``username`` holds the identity provider's stable subject (the assertion's ``sub``);
    email and name are kept current from each new assertion. ``claims_digest`` lets the
    middleware skip all writes while nothing in the assertion changed.
    """

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
        """Names of the user's groups (the assertion's groups plus the portal's role groups)."""
        return set(self.groups.values_list("name", flat=True))

    def get_short_name(self) -> str:
        # The admin greets with this; the IdP subject in username means nothing to people.
        return self.display_name or self.email or self.username

    def get_full_name(self) -> str:
        return self.display_name or self.email

    @property
    def label(self) -> str:
        return self.display_name or self.email or self.username
