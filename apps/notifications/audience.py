"""Who hears about a request or grant: the approvers of its resource, and the superusers.

Every function returns active users with an email address, each person once, ordered by
email so messages and tests are deterministic.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model

from apps.accounts.roles import claim_group_name

if TYPE_CHECKING:
    from apps.access.models import Resource
    from apps.accounts.models import User


def _reachable(users: Iterable[User], exclude: set[int]) -> list[User]:
    seen: set[str] = set()
    out: list[User] = []
    for user in sorted(users, key=lambda u: u.email.lower()):
        address = user.email.lower()
        if user.pk in exclude or not address or address in seen:
            continue
        seen.add(address)
        out.append(user)
    return out


def superusers(*, exclude: Iterable[int] = ()) -> list[User]:
    model = get_user_model()
    return _reachable(model.objects.filter(is_active=True, is_superuser=True), set(exclude))


def approvers(
    resource: Resource, *, exclude: Iterable[int] = (), with_superusers: bool = False
) -> list[User]:
    """The members of ``resource.approver_groups``, minus ``exclude`` (user ids).

    Superusers are added when ``with_superusers`` (break-glass), and otherwise only stand
    in when nobody else could act: the resource has no approver groups, or its groups have
    no reachable member besides the excluded people (a requester who is the only approver
    cannot decide their own request, so somebody else must hear of it).
    """
    model = get_user_model()
    excluded = set(exclude)
    members = _reachable(
        model.objects.filter(
            is_active=True,
            # Claim groups are mirrored under a prefix (apps.accounts.roles).
            groups__name__in=[claim_group_name(g) for g in resource.approver_groups],
        ).distinct()
        if resource.approver_groups
        else model.objects.none(),
        excluded,
    )
    if with_superusers or not members:
        members = _reachable([*members, *superusers(exclude=excluded)], excluded)
    return members
