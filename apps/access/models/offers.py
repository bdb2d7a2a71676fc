"""Who may ask for what: a resource's offers, each rule in Python and in SQL.

``open_to`` (ask for the resource the usual way) and ``breaks_glass`` (activate it at once
in an emergency) answer for one resource from its columns. ``open_to_sql`` and
``breaks_glass_sql`` are the same rules as filters on resources, so a page matches them in
its query instead of reading every resource into Python. Both forms are held to agree on a
table of cases, on SQLite and on PostgreSQL (``tests/access/test_offers.py``): change them
together. Neither looks at ``is_active``; an archived resource offers nothing, and the
callers read active resources only (``Resource.may_request``, ``ResourceQuerySet.active``).

The group lists are lists of group names (``Resource.clean``); a person's groups are the
names of their assertion's groups (``User.group_names``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Set

from django.db import connections
from django.db.models import Q

from .querysets import ListHasAny


def open_to(requester_groups: Iterable[str], groups: Set[str]) -> bool:
    """Whether people in ``groups`` may request a resource with these requester groups
    (none: everyone signed in). ``Resource.may_request`` for an active resource."""
    return not requester_groups or bool(groups & set(requester_groups))


def breaks_glass(break_glass_groups: Iterable[str], groups: Set[str]) -> bool:
    """Whether people in ``groups`` may break glass on a resource with these break-glass
    groups (none: nobody)."""
    return bool(groups & set(break_glass_groups))


def open_to_sql(groups: Set[str], using: str) -> Q:
    """``open_to`` as a filter on resources, for the database ``using``."""
    if not _lists_in_sql(using):
        return _where_rule("requester_groups", open_to, groups, using)
    everyone = Q(requester_groups=[])
    return everyone | Q(ListHasAny("requester_groups", groups)) if groups else everyone


def breaks_glass_sql(groups: Set[str], using: str) -> Q:
    """``breaks_glass`` as a filter on resources, for the database ``using``."""
    if not _lists_in_sql(using):
        return _where_rule("break_glass_groups", breaks_glass, groups, using)
    return Q(ListHasAny("break_glass_groups", groups)) if groups else Q(pk__in=[])


def _lists_in_sql(using: str) -> bool:
    return connections[using].vendor in ListHasAny.VENDORS


def _where_rule(
    field: str, rule: Callable[[list[str], Set[str]], bool], groups: Set[str], using: str
) -> Q:
    """Where the database cannot match lists (``ListHasAny``): the Python rule over every
    resource's list, and the ids it holds for."""
    from .resources import Resource

    rows = Resource.objects.using(using).values_list("pk", field)
    return Q(pk__in=[pk for pk, names in rows if rule(names, groups)])
