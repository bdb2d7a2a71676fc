"""The dashboard's rows, formatted in Python (apps/access/rows.py), are the old loops' HTML.

``OLD_GRANTS`` and ``OLD_REQUESTS`` are the rows written as template loops (as the dashboard
had them before its rows moved to Python, kept up to date with the rows); rendered over the
page's own context they must give exactly the markup the page now writes, for every kind
of row (break-glass, levels, schedules, scheduled grants, extensions, rejections with long
reasons, names that need escaping).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.template import engines
from django.utils import timezone
from django.utils.timezone import override as tz_override

from apps.access.models import Approval
from apps.access.states import GrantState, RequestKind, RequestState, SyncStatus
from apps.accounts.models import User
from tests.factories import (
    AccessLevelFactory,
    AccessRequestFactory,
    GrantFactory,
    ResourceFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

OLD_GRANTS = """{% for g in grants %}
      <tr data-grant="{{ g.pk }}">
        <td><a href="{{ g.detail_url }}">{{ g.resource.name }}</a>
          {% if g.is_break_glass %}<span class="badge break_glass">break-glass</span>{% endif %}
          {% if g.level %}<br><span class="muted">{{ g.level.name }}</span>{% endif %}</td>
        <td>{{ g.window_text }}
          {% if g.schedule_text %}<br><span class="muted schedule-state">{{ g.schedule_text }}</span>{% endif %}</td>
        <td class="access"><span class="badge access-{{ g.access.state }}">{{ g.access.label }}</span>
          {% if g.access.detail %}<br><span class="muted">{{ g.access.detail }}</span>{% endif %}</td>
        <td><a href="{{ g.more_url }}">Ask for more time</a></td>
      </tr>
    {% endfor %}"""  # noqa: E501

OLD_REQUESTS = """{% for r in requests %}
      <tr data-request="{{ r.pk }}">
        <td><a href="{{ r.detail_url }}">#{{ r.pk }}</a></td>
        <td>{{ r.resource.name }}{% if r.kind != "new" %} <span class="muted">({{ r.get_kind_display|lower }})</span>{% endif %}</td>
        <td>{{ r.asked_text }}</td>
        <td>{{ r.duration_text }}</td>
        <td class="outcome outcome-{{ r.state }}">{{ r.outcome }}
          {% if r.decision_reason and r.state == "rejected" %}<br><span class="muted">{{ r.decision_reason|truncatechars:80 }}</span>{% endif %}</td>
      </tr>
    {% endfor %}"""  # noqa: E501

WEEKDAYS = {"days": "mon-fri", "after": "09:00", "before": "17:00", "timezone": "Europe/Berlin"}


def every_kind_of_row(user: User) -> None:
    now = timezone.now()
    odd = ResourceFactory(slug="r-and-d", name='R&D <"lab"> \u2014 caf\u00e9', approvals_required=2)
    plain = ResourceFactory(slug="plain", name="Plain")
    levelled = ResourceFactory(slug="levelled", name="Levelled", schedule=WEEKDAYS)
    level = AccessLevelFactory(resource=levelled, name="Read <only>")
    GrantFactory(
        request__requester=user,
        request__resource=odd,
        is_break_glass=True,
        sync_status=SyncStatus.LIVE,
        live_at=now - timedelta(minutes=7),
    )
    GrantFactory(
        request__requester=user,
        request__resource=plain,
        state=GrantState.SCHEDULED,
        not_before=now + timedelta(days=2, hours=3),
        expires_at=now + timedelta(days=2, hours=7),
        live_at=now - timedelta(seconds=30),
        sync_status=SyncStatus.LIVE,
    )
    GrantFactory(
        request__requester=user,
        request__resource=levelled,
        level=level,
        schedule=WEEKDAYS,
        sync_status=SyncStatus.ERROR,
        expires_at=now + timedelta(days=3, minutes=5),
    )
    AccessRequestFactory(requester=user, resource=plain, kind=RequestKind.EXTENSION)
    AccessRequestFactory(
        requester=user, resource=odd, kind=RequestKind.BREAK_GLASS, state=RequestState.APPROVED
    )
    AccessRequestFactory(
        requester=user,
        resource=levelled,
        state=RequestState.REJECTED,
        decision_reason="Not <b>now</b> & not like this: " + "\u00e9" * 60 + " and more words",
        duration_minutes=90,
    )
    AccessRequestFactory(
        requester=user, resource=plain, state=RequestState.REJECTED, decision_reason="Short."
    )
    AccessRequestFactory(requester=user, resource=plain, state=RequestState.CANCELLED)
    waiting = AccessRequestFactory(requester=user, resource=odd, duration_minutes=2880)
    Approval.objects.create(request=waiting, approver=UserFactory(), created_at=now)


@pytest.mark.parametrize("zone", ["UTC", "Pacific/Chatham", "America/St_Johns"])
def test_the_rows_are_the_old_loops_markup(signed_in: Any, zone: str) -> None:
    client, user = signed_in("alice")
    User.objects.filter(pk=user.pk).update(time_zone=zone)
    every_kind_of_row(user)

    response = client.get("/")

    context = response.context
    assert len(context["grants"]) == 3 and len(context["requests"]) == 9
    engine = engines["django"]
    with tz_override(ZoneInfo(zone)):
        old_grants = engine.from_string(OLD_GRANTS).render({"grants": context["grants"]})
        old_requests = engine.from_string(OLD_REQUESTS).render({"requests": context["requests"]})
    assert context["grant_rows"] == old_grants
    assert context["request_rows"] == old_requests
    html = response.content.decode()
    assert old_grants in html and old_requests in html
    assert "R&amp;D &lt;&quot;lab&quot;&gt;" in html and "Read &lt;only&gt;" in html
    assert "Not &lt;b&gt;now&lt;/b&gt;" in html and "Waiting for approval (1 of 2)" in html
    assert "0 of 1" not in html  # the break-glass request says "Break-glass"
    assert "Break-glass" in html and "Not enforced \N{EM DASH} sync error" in html
