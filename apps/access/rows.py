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
``r.get_state_display()``...), so the old loops still render over them.

The markup is byte for byte what those loops rendered (``tests/access/test_dashboard_rows.py``
renders the old loops beside these rows and compares): change both together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from html import escape
from typing import Any, NamedTuple

from django.utils import timezone
from django.utils.dates import MONTHS_3, WEEKDAYS_ABBR
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator
from django.utils.timesince import TIME_STRINGS, timeuntil

from . import schedules
from .states import GrantState, RequestKind, RequestState, SyncStatus

GRANT_STATES = dict(GrantState.choices)
SYNC_STATUSES = dict(SyncStatus.choices)
REQUEST_STATES = dict(RequestState.choices)
REQUEST_KINDS = dict(RequestKind.choices)


def _label(labels: dict[str, str], value: str) -> str:
    # get_FOO_display(): the choice's label, or the value itself if it has none.
    return str(labels.get(value, value))


class ResourceCells(NamedTuple):
    name: str
    slug: str = ""
    approvals_required: int = 0


class LevelCells(NamedTuple):
    name: str


@dataclass(slots=True)
class GrantRow:
    """An open grant as the dashboard reads it; the view fills in the cells."""

    pk: int
    request_id: int
    state: str
    is_break_glass: bool
    not_before: datetime
    expires_at: datetime
    sync_status: str
    live_at: datetime | None
    schedule: Any
    resource: ResourceCells
    level: LevelCells | None
    window_text: str = ""
    time_left: str = ""
    live_text: str = ""
    schedule_text: str = ""
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
        "live_at",
        "schedule",
        "resource__name",
        "resource__slug",
        "level__name",
    )

    @classmethod
    def from_values(cls, values: tuple[Any, ...]) -> GrantRow:
        (pk, request_id, state, break_glass, not_before, expires_at, sync, live_at, schedule) = (
            values[:9]
        )
        resource_name, resource_slug, level_name = values[9:]
        return cls(
            pk,
            request_id,
            state,
            break_glass,
            not_before,
            expires_at,
            sync,
            live_at,
            schedule,
            resource=ResourceCells(resource_name, resource_slug),
            level=None if level_name is None else LevelCells(level_name),
        )

    def get_state_display(self) -> str:
        return _label(GRANT_STATES, self.state)

    def get_sync_status_display(self) -> str:
        return _label(SYNC_STATUSES, self.sync_status)

    def parsed_schedule(self) -> schedules.Schedule | None:
        return schedules.parse(self.schedule)


@dataclass(slots=True)
class RequestRow:
    """A request as the dashboard reads it; the view fills in the cells."""

    pk: int
    kind: str
    state: str
    created_at: datetime
    duration_minutes: int
    decision_reason: str
    resource: ResourceCells
    approval_count: int
    asked_text: str = ""
    duration_text: str = ""
    detail_url: str = ""

    COLUMNS = (
        "pk",
        "kind",
        "state",
        "created_at",
        "duration_minutes",
        "decision_reason",
        "resource__name",
        "resource__approvals_required",
        "approval_count",
    )

    @classmethod
    def from_values(cls, values: tuple[Any, ...]) -> RequestRow:
        pk, kind, state, created_at, minutes, reason, name, required, approvals = values
        return cls(
            pk,
            kind,
            state,
            created_at,
            minutes,
            reason,
            resource=ResourceCells(name, approvals_required=required),
            approval_count=approvals,
        )

    def get_state_display(self) -> str:
        return _label(REQUEST_STATES, self.state)

    def get_kind_display(self) -> str:
        return _label(REQUEST_KINDS, self.kind)


class LocalTimes:
    """``{{ value|date:"D j M H:i" }}`` and ``{{ value|timeuntil:now }}`` in one zone, for
    many values.

    Django's ``D`` is ``WEEKDAYS_ABBR``, ``M`` is ``MONTHS_3`` title-cased (both translated),
    ``j`` the day without a zero, ``H:i`` the 24-hour time. The translated names are looked
    up once per page rather than twice per value; so are ``timeuntil``'s units.
    """

    def __init__(self, zone: tzinfo) -> None:
        self.zone = zone
        self.weekdays = [str(WEEKDAYS_ABBR[day]) for day in range(7)]
        self.months = [""] + [str(MONTHS_3[month]).title() for month in range(1, 13)]

        # Any: Django's stubs ask for str values; these format like its lazy strings.
        self.units: dict[str, Any] = {n: _TranslatedOnce(t) for n, t in TIME_STRINGS.items()}

    def short(self, value: datetime) -> str:
        local = timezone.localtime(value, self.zone)
        weekday, month = self.weekdays[local.weekday()], self.months[local.month]
        return f"{weekday} {local.day} {month} {local.hour:02d}:{local.minute:02d}"

    def until(self, value: datetime, now: datetime) -> str:
        """``{{ value|timeuntil:now }}``: Django's own ``timeuntil``, with its unit strings
        ("%(num)d hours") translated once per number and page instead of once per use."""
        return timeuntil(value, now, time_strings=self.units)


class _TranslatedOnce:
    """A lazy plural string of ``timesince`` that remembers each ``% {"num": n}`` result.

    The translation depends only on the language, which a page does not change.
    """

    def __init__(self, text: Any) -> None:
        self.text = text
        self.done: dict[int, str] = {}

    def __mod__(self, values: dict[str, int]) -> str:
        num = values["num"]
        if num not in self.done:
            self.done[num] = str(self.text % values)
        return self.done[num]


GRANT_ROW = (
    "\n      <tr>\n"
    '        <td><a href="{detail_url}">{name}</a>\n'
    "          {break_glass}\n"
    '          <span class="badge {state}">{state_label}</span>\n'
    "          {level}</td>\n"
    "        <td>{window}\n"
    "          {schedule}</td>\n"
    "        <td>{time_left}</td>\n"
    '        <td><span class="badge {sync}">{sync_label}</span>\n'
    "          {live}</td>\n"
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
        rows.append(
            GRANT_ROW.format(
                detail_url=escape(g.detail_url),
                name=escape(g.resource.name),
                break_glass=BREAK_GLASS_BADGE if g.is_break_glass else "",
                state=escape(g.state),
                state_label=escape(g.get_state_display()),
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
                time_left=escape(g.time_left),
                sync=escape(g.sync_status),
                sync_label=escape(g.get_sync_status_display()),
                live=(
                    f'<br><span class="muted">{escape(g.live_text)}</span>' if g.live_text else ""
                ),
                more_url=escape(g.more_url),
            )
        )
    return mark_safe("".join(rows))  # noqa: S308 - every value above is escaped


REQUEST_ROW = (
    "\n      <tr>\n"
    '        <td><a href="{detail_url}">#{pk}</a></td>\n'
    "        <td>{name}{kind}</td>\n"
    "        <td>{asked}</td>\n"
    "        <td>{duration}</td>\n"
    '        <td><span class="badge {state}">{state_label}</span>\n'
    "          {reason}</td>\n"
    "        <td>{approvals} of {required}</td>\n"
    "      </tr>\n"
    "    "
)


def request_rows(requests: list[RequestRow]) -> SafeString:
    """The ``<tbody>`` rows of "My requests", from requests the view gave their cells.

    Numbers print as ``str()`` does: the template's localisation of an integer is the same
    while ``USE_THOUSAND_SEPARATOR`` is off (the default, and this project's setting).
    """
    rows = []
    for r in requests:
        kind = (
            f' <span class="muted">({escape(r.get_kind_display().lower())})</span>'
            if r.kind != RequestKind.NEW
            else ""
        )
        reason = (
            f'<br><span class="muted">{escape(Truncator(r.decision_reason).chars(80))}</span>'
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
                state_label=escape(r.get_state_display()),
                reason=reason,
                approvals=r.approval_count,
                required=r.resource.approvals_required,
            )
        )
    return mark_safe("".join(rows))  # noqa: S308 - every value above is escaped
