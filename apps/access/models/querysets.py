"""The querysets of the access models: the visibility-scoped base (``restrict``) and each
model's named filters."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Self, TypeVar

from django.conf import settings
from django.db import NotSupportedError, models
from django.db.models import Case, Q, Value, When

from .. import targets, visibility
from ..clusters import configured as configured_clusters
from ..states import (
    OPEN_GRANT_STATES,
    GrantState,
    RequestState,
    SyncStatus,
)

if TYPE_CHECKING:
    from apps.accounts.models import User

    # The models name their querysets' rows (the strings in the generic bases below).
    from .grants import Grant, GrantExtension  # noqa: F401
    from .requests import AccessRequest, Approval  # noqa: F401
    from .resources import Resource


class ListHasAny(models.Func):
    """True where a JSON list of strings (``field``) holds any of ``values``: what
    ``bool(set(values) & set(row.field))`` says in Python, for PostgreSQL and SQLite."""

    VENDORS = ("postgresql", "sqlite")
    output_field = models.BooleanField()
    conditional = True

    def __init__(self, field: str, values: Iterable[str]) -> None:
        self.values = sorted(values)
        super().__init__(models.F(field))

    def as_sql(self, *args: Any, **kwargs: Any) -> Any:
        raise NotSupportedError(f"ListHasAny works on {', '.join(self.VENDORS)} only")

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        # jsonb ?| text[]: any of the strings is a top-level element (strings only).
        column, params = compiler.compile(self.source_expressions[0])
        return f"({column} ?| %s::text[])", (*params, self.values)

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        column, params = compiler.compile(self.source_expressions[0])
        marks = ", ".join(["%s"] * len(self.values))
        return (
            f"EXISTS (SELECT 1 FROM json_each({column}) AS element "  # noqa: S608 - params below
            f"WHERE element.type = 'text' AND element.value IN ({marks}))",
            (*params, *self.values),
        )


_Row = TypeVar("_Row", bound=models.Model)


class RestrictedQuerySet(models.QuerySet[_Row]):
    """Rows that answer "which of these may this person see, or act on?" (``restrict``)."""

    # The path from a row to its resource ("" for a resource) and to the people it is
    # about (who may view it): what ``visibility.restrict`` needs to know of the model.
    resource_path: ClassVar[str] = "resource"
    owner_paths: ClassVar[tuple[str, ...]] = ()

    def restrict(self, user: User, action: str = visibility.VIEW) -> Self:
        """The rows ``user`` may ``action`` (``visibility.VIEW`` or ``CHANGE``): the one rule."""
        return visibility.restrict(
            self, user, action, resource=self.resource_path, owners=self.owner_paths
        )


class ResourceQuerySet(RestrictedQuerySet["Resource"]):
    resource_path = ""

    def active(self) -> ResourceQuerySet:
        return self.filter(is_active=True)

    def requestable_by(self, user: User) -> list[Resource]:
        """The active resources ``user`` may request (``Resource.may_request``), by name,
        their levels read: the rule matched in the query (``offers.open_to_sql``)."""
        from .offers import open_to_sql

        matched = self.active().filter(open_to_sql(user.group_names(), self.db))
        return list(matched.order_by("name").prefetch_related("levels"))


def pending_first() -> Case:
    """0 for a pending request, 1 otherwise: the admin lists pending requests first. The
    admin orders by this expression and an index (``request_admin_order``) holds it."""
    return Case(
        When(state=RequestState.PENDING, then=Value(0)),
        default=Value(1),
        output_field=models.IntegerField(),
    )


class AccessRequestQuerySet(RestrictedQuerySet["AccessRequest"]):
    owner_paths = ("requester", "filed_by")

    def pending(self) -> AccessRequestQuerySet:
        return self.filter(state=RequestState.PENDING)

    def due_for_expiry(self, now: datetime) -> AccessRequestQuerySet:
        """Pending requests that waited too long, or whose resource was archived."""
        return self.pending().filter(Q(expires_at__lte=now) | Q(resource__is_active=False))

    def open_for(self, user: User, resource: Resource) -> AccessRequestQuerySet:
        return self.pending().filter(requester=user, resource=resource)


class ApprovalQuerySet(RestrictedQuerySet["Approval"]):
    resource_path = "request__resource"
    owner_paths = ("request__requester", "request__filed_by")


class GrantQuerySet(RestrictedQuerySet["Grant"]):
    owner_paths = ("user",)

    def open(self) -> GrantQuerySet:
        return self.filter(state__in=OPEN_GRANT_STATES)

    def active_at(self, at: datetime) -> GrantQuerySet:
        return self.open().filter(not_before__lte=at, expires_at__gt=at)

    def due_for_activation(self, now: datetime) -> GrantQuerySet:
        return self.filter(state=GrantState.SCHEDULED, not_before__lte=now, expires_at__gt=now)

    def due_for_expiry(self, now: datetime) -> GrantQuerySet:
        return self.open().filter(expires_at__lte=now)

    def in_policy(self, resource: Resource, now: datetime) -> GrantQuerySet:
        """Grants the resource's policy must carry: not revoked, window not yet over."""
        return self.filter(resource=resource, state__in=OPEN_GRANT_STATES, expires_at__gt=now)

    def removal_overdue(self, now: datetime) -> GrantQuerySet:
        """Revoked grants whose window is still open and whose removal Pomerium has not
        confirmed within ``ZERO_REMOVAL_ALERT_SECONDS``: the user may still get in. On a
        target that cannot close a rule by itself (``targets.closes_by_itself``) the same
        holds for a grant whose end passed that long ago: only the worker removes its rule.
        """
        threshold = now - timedelta(seconds=settings.ZERO_REMOVAL_ALERT_SECONDS)
        overdue = Q(state=GrantState.REVOKED, revoked_at__lte=threshold, expires_at__gt=now)
        open_ended = [n for n in configured_clusters() if not targets.closes_by_itself(n)]
        if open_ended:
            overdue |= Q(resource__cluster__in=open_ended, expires_at__lte=threshold)
        return self.filter(overdue).exclude(sync_status=SyncStatus.REMOVED)

    def needing_review(self) -> GrantQuerySet:
        return self.filter(is_break_glass=True, reviewed_at__isnull=True)


class GrantExtensionQuerySet(RestrictedQuerySet["GrantExtension"]):
    resource_path = "grant__resource"
    owner_paths = ("grant__user",)
