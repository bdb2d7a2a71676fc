"""The dashboard's two tables, formatted in Python: the page's cost must not be its rows.

With 50 open grants and 50 requests on a page, the template engine cost more than the rest
of the request together: every ``{{ }}`` is a lookup chain (a dictionary try, then an
attribute) plus localisation and escaping, every ``{% if %}`` a node, and each time is
formatted through translated month and weekday names. Here each row is one ``str.format``
of already formatted cells, escaped with ``html.escape`` (what Django's autoescape calls),
and the page's template writes the joined rows where its ``{% for %}`` loops were.

The rows are read as tuples of the columns they show (``GrantRow``, ``RequestRow``), not as
model instances: building a model instance per row and per related row cost as much as the
query. They keep the attribute names the models had (``g.resource.name``,
``r.get_state_display()``...), so a template loop renders over them too.

The markup is byte for byte what template loops over the same rows render
(``tests/access/test_dashboard_rows.py`` renders such loops beside these rows and
compares): change both together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from html import escape
from typing import Any, NamedTuple, cast

from django.db.models import Field
from django.utils import timezone
from django.utils.dates import MONTHS_3, WEEKDAYS_ABBR
from django.utils.safestring import SafeString, mark_safe

from apps.accounts.timezones import abbreviation
from apps.kit import choices
from apps.kit.text import truncate_chars

from . import schedules
from .models import AccessRequest, Grant
from .states import RequestKind, RequestState, is_live

# get_FOO_display()'s answer for a value read as a column (``choices.label``).
_GRANT_STATE = cast("Field[Any, Any]", Grant._meta.get_field("state"))
_REQUEST_STATE = cast("Field[Any, Any]", AccessRequest._meta.get_field("state"))
_REQUEST_KIND = cast("Field[Any, Any]", AccessRequest._meta.get_field("kind"))


def _label(field: Field[Any, Any], value: str) -> str:
    return str(choices.label(field, value))


class ResourceCells(NamedTuple):
    name: str
    slug: str = ""
    approvals_required: int = 0
    cluster: str = ""


class LevelCells(NamedTuple):
    name: str


@dataclass(slots=True)
class GrantRow:
    """An open grant as the dashboard reads it; the view fills in the cells.

    It has the attributes ``reach.access`` reads, so the row is answered like a grant."""

    pk: int
    request_id: int
    state: str
    is_break_glass: bool
    not_before: datetime
    expires_at: datetime
    sync_status: str
    sync_error: str
    live_at: datetime | None
    enforced_at: datetime | None
    schedule: Any
    resource: ResourceCells
    level: LevelCells | None
    window_text: str = ""
    schedule_text: str = ""
    access: Any = None  # reach.Access
    detail_url: str = ""
    more_url: str = ""

    # The columns, in the constructor's order (``values_list`` then ``from_values``).
    COLUMNS = (
        "pk",
        "request_id",
        "state",
        "is_break_glass",
        "not_before",
        "expires_at",
        "sync_status",
        "sync_error",
        "live_at",
        "enforced_at",
        "schedule",
        "resource__name",
        "resource__slug",
        "resource__cluster",
        "level__name",
    )

    @classmethod
    def from_values(cls, values: tuple[Any, ...]) -> GrantRow:
        (pk, request_id, state, break_glass, not_before, expires_at, sync, sync_error) = values[:8]
        live_at, enforced_at, schedule = values[8:11]
        resource_name, resource_slug, cluster, level_name = values[11:]
        return cls(
            pk,
            request_id,
            state,
            break_glass,
            not_before,
            expires_at,
            sync,
            sync_error,
            live_at,
            enforced_at,
            schedule,
            resource=ResourceCells(resource_name, resource_slug, cluster=cluster),
            level=None if level_name is None else LevelCells(level_name),
        )

    @property
    def is_live(self) -> bool:
        """Pomerium has confirmed the grant's rule (``states.is_live``, the one definition)."""
        return is_live(self.sync_status)

    def get_state_display(self) -> str:
        return _label(_GRANT_STATE, self.state)

    def parsed_schedule(self) -> schedules.Schedule | None:
        return schedules.parse(self.schedule)


class _Person(NamedTuple):
    email: str


class _GrantEnd(NamedTuple):
    """What ``reach.outcome`` reads of a request's grant."""

    state: str
    expires_at: datetime
    revoked_at: datetime | None
    revoked_by_id: int | None
    user_id: int
    revoked_by: _Person | None


@dataclass(slots=True)
class RequestRow:
    """A request as the dashboard reads it; the view fills in the cells."""

    pk: int
    kind: str
    state: str
    created_at: datetime
    duration_minutes: int
    decision_reason: str
    auto_approved_rule: Any
    decided_by: _Person | None
    resource: ResourceCells
    approval_count: int
    required: int
    grant: _GrantEnd | None
    asked_text: str = ""
    duration_text: str = ""
    outcome: str = ""
    detail_url: str = ""

    COLUMNS = (
        "pk",
        "kind",
        "state",
        "created_at",
        "duration_minutes",
        "decision_reason",
        "auto_approved_rule",
        "decided_by_email",  # the views annotate the two emails (``queries.email_of``)
        "resource__name",
        "resource__approvals_required",
        "level__approvals_required",
        "approved_level__approvals_required",
        "approval_count",
        "grant__state",
        "grant__expires_at",
        "grant__revoked_at",
        "grant__revoked_by_id",
        "grant__user_id",
        "revoked_by_email",
    )

    @classmethod
    def from_values(cls, values: tuple[Any, ...]) -> RequestRow:
        pk, kind, state, created_at, minutes, reason, rule, decider, name = values[:9]
        required, level_required, approved_required, approvals = values[9:13]
        g_state, g_expires, g_revoked_at, g_revoked_by, g_user, g_revoker = values[13:]
        grant = (
            None
            if g_state is None
            else _GrantEnd(
                g_state,
                g_expires,
                g_revoked_at,
                g_revoked_by,
                g_user,
                _Person(g_revoker) if g_revoker else None,
            )
        )
        return cls(
            pk,
            kind,
            state,
            created_at,
            minutes,
            reason,
            rule,
            _Person(decider) if decider else None,
            resource=ResourceCells(name, approvals_required=required),
            approval_count=approvals,
            # Resource.approvals_needed(effective level): the level's own quorum, if it has one.
            required=approved_required or level_required or required,
            grant=grant,
        )

    def get_state_display(self) -> str:
        return _label(_REQUEST_STATE, self.state)

    def get_kind_display(self) -> str:
        return _label(_REQUEST_KIND, self.kind)


class LocalTimes:
    """``{{ value|date:"D j M H:i T" }}`` in one zone, for many values.

    Django's ``D`` is ``WEEKDAYS_ABBR``, ``M`` is ``MONTHS_3`` title-cased (both translated),
    ``j`` the day without a zero, ``H:i`` the 24-hour time, ``T`` the zone's abbreviation.
    The translated names are looked up once per page rather than twice per value.
    """

    def __init__(self, zone: tzinfo) -> None:
        self.zone = zone
        self.weekdays = [str(WEEKDAYS_ABBR[day]) for day in range(7)]
        self.months = [""] + [str(MONTHS_3[month]).title() for month in range(1, 13)]

    def short(self, value: datetime) -> str:
        """``Mon 2 Mar 09:00 CET``: every time a person reads names its zone."""
        local = timezone.localtime(value, self.zone)
        weekday, month = self.weekdays[local.weekday()], self.months[local.month]
        return (
            f"{weekday} {local.day} {month} {local.hour:02d}:{local.minute:02d} "
            f"{abbreviation(local)}"
        )


GRANT_ROW = (
    '\n      <tr data-grant="{pk}">\n'
    '        <td><a href="{detail_url}">{name}</a>\n'
    "          {break_glass}\n"
    "          {level}</td>\n"
    "        <td>{window}\n"
    "          {schedule}</td>\n"
    '        <td class="access"><span class="badge access-{access_state}">{access_label}</span>\n'
    "          {detail}</td>\n"
    '        <td><a href="{more_url}">Ask for more time</a></td>\n'
    "      </tr>\n"
    "    "
)
BREAK_GLASS_BADGE = '<span class="badge break_glass">break-glass</span>'


def grant_rows(grants: list[GrantRow]) -> SafeString:
    """The ``<tbody>`` rows of "Access I have", from grants the view gave their cells."""
    rows = []
    for g in grants:
        level = g.level
        detail = g.access.detail
        rows.append(
            GRANT_ROW.format(
                pk=g.pk,
                detail_url=escape(g.detail_url),
                name=escape(g.resource.name),
                break_glass=BREAK_GLASS_BADGE if g.is_break_glass else "",
                level=(
                    f'<br><span class="muted">{escape(level.name)}</span>'
                    if level is not None
                    else ""
                ),
                window=escape(g.window_text),
                schedule=(
                    f'<br><span class="muted schedule-state">{escape(g.schedule_text)}</span>'
                    if g.schedule_text
                    else ""
                ),
                access_state=escape(g.access.state),
                access_label=escape(g.access.label),
                detail=f'<br><span class="muted">{escape(detail)}</span>' if detail else "",
                more_url=escape(g.more_url),
            )
        )
    return mark_safe("".join(rows))  # noqa: S308 - every value above is escaped


REQUEST_ROW = (
    '\n      <tr data-request="{pk}">\n'
    '        <td><a href="{detail_url}">#{pk}</a></td>\n'
    "        <td>{name}{kind}</td>\n"
    "        <td>{asked}</td>\n"
    "        <td>{duration}</td>\n"
    '        <td class="outcome outcome-{state}">{outcome}\n'
    "          {reason}</td>\n"
    "      </tr>\n"
    "    "
)


def request_rows(requests: list[RequestRow]) -> SafeString:
    """The ``<tbody>`` rows of "My requests", from requests the view gave their cells."""
    rows = []
    for r in requests:
        kind = (
            f' <span class="muted">({escape(r.get_kind_display().lower())})</span>'
            if r.kind != RequestKind.NEW
            else ""
        )
        reason = (
            f'<br><span class="muted">{escape(truncate_chars(r.decision_reason, 80))}</span>'
            if r.decision_reason and r.state == RequestState.REJECTED
            else ""
        )
        rows.append(
            REQUEST_ROW.format(
                detail_url=escape(r.detail_url),
                pk=r.pk,
                name=escape(r.resource.name),
                kind=kind,
                asked=escape(r.asked_text),
                duration=escape(r.duration_text),
                state=escape(r.state),
                outcome=escape(r.outcome),
                reason=reason,
            )
        )
    return mark_safe("".join(rows))  # noqa: S308 - every value above is escaped
