"""Every changelist's rows, rendered per column (``apps.kit.admin_lists``), are exactly the
markup Django's own ``{% result_list cl %}`` gives for the same changelist.

Each page is read as a superuser (every row visible) whose zone has a half-hour offset, over
data that takes every branch the columns have: empty values, choices, booleans, links with
preserved filters, HTML in names, related rows missing, model admin methods, plain
attributes and ``<fk>_id`` columns. The clock stands still, so "12 minutes" cannot tick.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.template import Context, Template
from django.utils import timezone
from django.utils.html import conditional_escape

from apps.access.actions import AccessAction
from apps.access.models import Grant
from apps.access.states import GrantState, RequestKind, RequestState, SyncStatus
from apps.accounts.models import User
from apps.audit.models import AuditEvent
from apps.notifications.models import Channel, Event, Notification, Status
from apps.pomerium.models import PolicySync
from tests.factories import (
    AccessLevelFactory,
    AccessRequestFactory,
    GrantFactory,
    ResourceFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

ZONE = "America/St_Johns"
DJANGO_RESULT_LIST = Template("{% load admin_list %}{% result_list cl %}")
DJANGO_FILTERS = Template(
    "{% load admin_list %}{% for spec in cl.filter_specs %}{% admin_list_filter cl spec %}"
    "{% endfor %}"
)
CHANGELISTS = [
    "/admin/access/accessrequest/",
    "/admin/access/grant/",
    "/admin/access/resource/",
    "/admin/zero/policysync/",
    "/admin/audit/auditevent/",
    "/admin/accounts/user/",
    "/admin/notifications/notification/",
]
# Every changelist is shown in the reader's zone, the audit trail's included (one clock).
# The changelists with a detail line under each row (``list_detail``).
WITH_DETAIL_ROWS = {"/admin/access/accessrequest/"}
DETAIL_ROW = re.compile(r'<tr class="detail-row">.*?</tr>', re.DOTALL)
# The plain page, a sort on two columns, a search, a filter (a preserved filter in each link).
QUERIES = ["", "?o=-2.3", "?q=example", "?p=1&o=1"]


def history() -> None:
    """A little of everything each changelist shows."""
    now = timezone.now()
    lab = ResourceFactory(slug="lab", name='R&D <"lab">', approvals_required=2)
    old = ResourceFactory(slug="old", name="Old app", is_active=False, cluster="production")
    quiet = ResourceFactory(slug="quiet", name="Quiet app")
    read = AccessLevelFactory(resource=lab, slug="read", name="Read <only>", rank=0)
    person = UserFactory(email="p&q@example.com", display_name="P <Q>")
    nobody = UserFactory(email="", display_name="")
    AccessRequestFactory(resource=lab, requester=person, level=read)
    AccessRequestFactory(
        resource=lab,
        requester=nobody,
        start_at=now + timedelta(hours=5),
        justification="x" * 200,
        created_at=now - timedelta(days=3),
    )
    AccessRequestFactory(
        resource=old,
        state=RequestState.APPROVED,
        duration_minutes=480,
        approved_duration_minutes=120,
        kind=RequestKind.BREAK_GLASS,
    )
    AccessRequestFactory(resource=quiet, state=RequestState.REJECTED, justification="   ")
    GrantFactory(request__resource=lab, request__requester=person, is_break_glass=True)
    GrantFactory(
        request__resource=lab,
        is_break_glass=True,
        reviewed_at=now,
        sync_status=SyncStatus.LIVE,
        live_at=now - timedelta(minutes=3),
        enforced_at=now - timedelta(minutes=2),
        level=read,
    )
    GrantFactory(
        request__resource=old,
        state=GrantState.REVOKED,
        revoked_at=now - timedelta(hours=2),
        sync_status=SyncStatus.PENDING,
    )
    GrantFactory(
        request__resource=quiet,
        state=GrantState.SCHEDULED,
        not_before=now + timedelta(days=2),
        expires_at=now + timedelta(days=2, hours=4),
    )
    GrantFactory(
        request__resource=quiet,
        state=GrantState.EXPIRED,
        not_before=now - timedelta(days=9),
        expires_at=now - timedelta(days=8),
        sync_status=SyncStatus.REMOVED,
    )
    Grant.objects.filter(state=GrantState.ACTIVE, is_break_glass=False).update(
        expires_at=now + timedelta(seconds=1)
    )
    PolicySync.objects.create(
        resource=lab,
        remote_policy_id="pol-1",
        cluster_id="c-1",
        last_attempt_at=now,
        last_success_at=now - timedelta(hours=1),
        last_error="Zero said <no> & more " + "y" * 150,
        last_error_at=now,
        consecutive_failures=3,
        routes=[{"name": "lab", "from": "https://lab.example.com"}, {"id": "r-2"}, "junk"],
    )
    PolicySync.objects.create(
        resource=old,
        duplicate_policy_ids=["a", "b"],
        last_attempt_at=now,
        last_success_at=now,
    )
    PolicySync.objects.create(
        resource=quiet, pending_apply=True, pending_reason="", last_attempt_at=now
    )
    AuditEvent.objects.bulk_create(
        AuditEvent(
            seq=seq,
            created_at=now - timedelta(minutes=seq),
            actor_label="a&b@example.com" if seq % 2 else "",
            action=AccessAction.REQUEST_SUBMITTED,
            target_type="accessrequest",
            target_id=str(seq),
            target_repr=f"#{seq} <req>",
            resource_slug="lab" if seq % 3 else "",
            details={},
            prev_hash=f"{seq - 1:064x}",
            hash=f"{seq:064x}",
        )
        for seq in range(1_000_001, 1_000_006)
    )
    first = lab.requests.first()
    for i, status in enumerate(Status.values):
        Notification.objects.create(
            event=Event.values[i % len(Event.values)],
            channel=Channel.EMAIL if i % 2 else Channel.SLACK,
            recipient="slack:lab" if i % 2 == 0 else "p&q@example.com",
            subject="Subject <b>" + "s" * i * 40,
            body="body",
            status=status,
            attempts=i,
            last_error="" if status != Status.FAILED else "SMTP <550> " + "e" * 80,
            sent_at=now if status == Status.SENT else None,
            request=first if i % 2 == 0 else None,
            dedup_key=f"{i:064x}",
        )


@pytest.fixture
def superuser_client(superuser: Any) -> Any:
    assert superuser.get("/preferences").status_code == 200  # signs in: creates the person
    assert User.objects.filter(username="idp|root").update(time_zone=ZONE) == 1
    return superuser


@pytest.mark.parametrize("url", CHANGELISTS)
def test_rows_are_djangos_markup(superuser_client: Any, url: str) -> None:
    with time_machine.travel(timezone.now(), tick=False):
        history()
        for query in QUERIES:
            response = superuser_client.get(url + query)
            assert response.status_code == 200, (url, query)
            assert "admin/fast_change_list.html" in [t.name for t in response.templates]
            cl = response.context["cl"]
            if not query:
                assert len(cl.result_list) >= 3, url
            with timezone.override(ZoneInfo(ZONE)):
                django = DJANGO_RESULT_LIST.render(Context({"cl": cl, "opts": cl.opts}))
            assert "<tbody>" in django or not cl.result_list
            page = response.content.decode()
            # The filters, each rendered once per set of choices (rendered_filters), are
            # Django's too, for this query's state.
            with timezone.override(ZoneInfo(ZONE)):
                filters = DJANGO_FILTERS.render(Context({"cl": cl}))
            assert cl.has_filters == bool(filters.strip()), url
            assert filters in page, (url, query)
            if url in WITH_DETAIL_ROWS:
                # The detail line under each row is ours, right after the row on its line,
                # spanning every column but the checkbox; every row itself is Django's.
                columns = len(cl.list_display)
                with timezone.override(ZoneInfo(ZONE)):
                    details = [
                        conditional_escape(cl.model_admin.list_detail(o)) for o in cl.result_list
                    ]
                wanted = [
                    f'<tr class="detail-row"><td></td><td colspan="{columns - 1}">{d}</td></tr>'
                    for d in details
                ]
                assert DETAIL_ROW.findall(page) == wanted
                assert page.count('</tr><tr class="detail-row">') == len(cl.result_list)
                page = DETAIL_ROW.sub("", page)
            assert django in page, _first_difference(django, page)


def _first_difference(django: str, page: str) -> str:
    start = page.find('<div class="results">')
    ours = page[start : start + len(django) + 50]
    theirs = django[django.find('<div class="results">') :]
    at = next((i for i, (a, b) in enumerate(zip(theirs, ours, strict=False)) if a != b), 0)
    return f"Django: {theirs[at - 120 : at + 120]!r}\nours:   {ours[at - 120 : at + 120]!r}"


@pytest.mark.parametrize("url", CHANGELISTS)
def test_page_media_and_action_form_are_djangos(superuser_client: Any, url: str) -> None:
    """The scripts, styles and action widgets rendered once per process
    (``rendered_media``, the memoized action form) are what Django renders for the same
    page, on the first view and on the next."""
    from django import forms
    from django.contrib.admin import helpers

    history()
    for _ in range(2):
        response = superuser_client.get(url)
        assert response.status_code == 200
        page = response.content.decode()
        admin = response.context["cl"].model_admin
        media: forms.Media = admin.media
        form = response.context["action_form"]
        if form is not None:
            django_form = helpers.ActionForm(auto_id=None)
            django_form.fields["action"].choices = form.fields["action"].choices
            media += django_form.media
            for name in ("action", "select_across"):
                assert str(django_form[name]) in page, name
        assert str(media["css"]) in page
        assert str(media["js"]) in page


def test_action_widgets_follow_their_choices() -> None:
    """One widget HTML per set of choices: other choices, another value or other attributes
    are rendered anew, never served from another's entry."""
    from apps.kit.admin_lists import ActionForm

    first = ActionForm(auto_id=None)
    first.fields["action"].choices = [("", "---------"), ("approve", "Approve <selected>")]
    second = ActionForm(auto_id=None)
    second.fields["action"].choices = [("", "---------"), ("revoke", "Revoke selected")]
    html_first, html_second = str(first["action"]), str(second["action"])
    assert 'value="approve"' in html_first and "Approve &lt;selected&gt;" in html_first
    assert 'value="revoke"' in html_second and "approve" not in html_second
    assert str(first["action"]) == html_first
    bound = ActionForm({"action": "approve"}, auto_id=None)
    bound.fields["action"].choices = first.fields["action"].choices
    assert '<option value="approve" selected>' in str(bound["action"])
    assert str(first["select_across"]) == (
        '<input type="hidden" name="select_across" value="0" class="select-across">'
    )
