"""The dashboard's two tables, formatted in Python: the page's cost must not be its rows.

With 50 open grants and 50 requests on a page, the template engine cost more than the rest
of the request together: every ``{{ }}`` is a lookup chain (a dictionary try, then an
attribute) plus localisation and escaping, every ``{% if %}`` a node, and each time is
formatted through translated month and weekday names. Here each row is one ``str.format``
of already formatted cells, escaped with ``html.escape`` (what Django's autoescape calls),
and the page's template writes the joined rows where its ``{% for %}`` loops were.

The markup is byte for byte what those loops rendered (``tests/access/test_dashboard_rows.py``
renders the old loops beside these rows and compares): change both together.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from html import escape
from typing import Any

from django.utils import timezone
from django.utils.dates import MONTHS_3, WEEKDAYS_ABBR
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator

from .states import GrantState, RequestKind, RequestState, SyncStatus

GRANT_STATES = dict(GrantState.choices)
SYNC_STATUSES = dict(SyncStatus.choices)
REQUEST_STATES = dict(RequestState.choices)
REQUEST_KINDS = dict(RequestKind.choices)


class LocalTimes:
    """``{{ value|date:"D j M H:i" }}`` in one zone, for many values.

    Django's ``D`` is ``WEEKDAYS_ABBR``, ``M`` is ``MONTHS_3`` title-cased (both translated),
    ``j`` the day without a zero, ``H:i`` the 24-hour time. The translated names are looked
    up once per page rather than twice per value.
    """

    def __init__(self, zone: tzinfo) -> None:
        self.zone = zone
        self.weekdays = [str(WEEKDAYS_ABBR[day]) for day in range(7)]
        self.months = [""] + [str(MONTHS_3[month]).title() for month in range(1, 13)]

    def short(self, value: datetime) -> str:
        local = timezone.localtime(value, self.zone)
        weekday, month = self.weekdays[local.weekday()], self.months[local.month]
        return f"{weekday} {local.day} {month} {local.hour:02d}:{local.minute:02d}"


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


def _label(labels: dict[str, str], value: str) -> str:
    # get_FOO_display(): the choice's label, or the value itself if it has none.
    return str(labels.get(value, value))


def grant_rows(grants: list[Any]) -> SafeString:
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
                state_label=escape(_label(GRANT_STATES, g.state)),
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
                sync_label=escape(_label(SYNC_STATUSES, g.sync_status)),
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


def request_rows(requests: list[Any]) -> SafeString:
    """The ``<tbody>`` rows of "My requests", from requests the view gave their cells.

    Numbers print as ``str()`` does: the template's localisation of an integer is the same
    while ``USE_THOUSAND_SEPARATOR`` is off (the default, and this project's setting).
    """
    rows = []
    for r in requests:
        kind = (
            f' <span class="muted">({escape(_label(REQUEST_KINDS, r.kind).lower())})</span>'
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
                state_label=escape(_label(REQUEST_STATES, r.state)),
                reason=reason,
                approvals=r.approval_count,
                required=r.resource.approvals_required,
            )
        )
    return mark_safe("".join(rows))  # noqa: S308 - every value above is escaped
