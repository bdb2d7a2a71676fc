"""``apps.kit.admin_lists`` for column kinds the project's changelists do not show today:
choice fields, JSON fields, callables, model admin methods marked boolean or returning
dates, dotted lookups, related rows that are missing, and changelists without links or
without a change URL. Each row must be exactly Django's ``items_for_result`` markup."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.admin.templatetags.admin_list import results
from django.test import RequestFactory
from django.utils import timezone

from apps.access.models import AccessRequest
from apps.kit.admin_lists import _ChangeUrl, fast_results
from tests.factories import AccessLevelFactory, AccessRequestFactory, ResourceFactory, UserFactory

pytestmark = pytest.mark.django_db


def shout(obj: AccessRequest) -> str:
    return f"<{obj.ticket}>" if obj.ticket else ""


shout.short_description = "Shout"  # type: ignore[attr-defined]


class EdgeAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "state",
        "kind",
        "resource",
        "level",
        "justification",
        "ticket",
        "duration_minutes",
        "approved_duration_minutes",
        "start_at",
        "auto_approved_rule",
        shout,
        "filed_for_someone",
        "filed_on",
        "resource__slug",
        "effective_level",
        "__str__",
    ]
    ordering = ["id"]

    @admin.display(boolean=True)
    def filed_for_someone(self, obj: AccessRequest) -> bool | None:
        if obj.ticket == "unknown":
            return None
        return obj.filed_by_id != obj.requester_id

    @admin.display(empty_value="(never)")
    def filed_on(self, obj: AccessRequest) -> datetime.date | None:
        return obj.created_at.date() if obj.justification.strip() else None


def rows(
    model_admin: admin.ModelAdmin, superuser: Any, **query: str
) -> tuple[list[str], list[str]]:
    request = RequestFactory().get("/admin/", {"o": "1", **query})
    request.user = superuser
    cl = model_admin.get_changelist_instance(request)
    cl.formset = None  # as changelist_view sets it when no row is editable
    django = ["".join(str(item) for item in row) for row in results(cl)]
    ours = ["".join(str(item) for item in row) for row in fast_results(cl)]
    return django, ours


@pytest.fixture
def history() -> list[AccessRequest]:
    lab = ResourceFactory(slug="lab", name='R&D <"lab">')
    read = AccessLevelFactory(resource=lab, slug="read", name="Read <only>", rank=0)
    person = UserFactory(email="p&q@example.com", display_name="P <Q>")
    helper = UserFactory(email="helper@example.com")
    return [
        AccessRequestFactory(resource=lab, requester=person, level=read, ticket="OPS-1 & co"),
        AccessRequestFactory(
            resource=lab,
            requester=helper,
            filed_by=person,
            justification="   ",
            start_at=timezone.now() + datetime.timedelta(hours=5),
            approved_duration_minutes=30,
            auto_approved_rule={"group": "oncall", "max_minutes": 60},
        ),
        AccessRequestFactory(resource=lab, requester=helper, ticket="unknown", state="rejected"),
    ]


@pytest.fixture
def root() -> Any:
    return UserFactory(email="root@example.com", is_superuser=True, is_staff=True)


def test_every_column_kind_is_djangos_markup(history: list, root: Any) -> None:
    django, ours = rows(EdgeAdmin(AccessRequest, admin.AdminSite(name="admin")), root)
    assert len(ours) == 3
    assert ours == django
    assert '<a href="/admin/access/accessrequest/' in ours[0]  # the first column links
    assert "&lt;OPS-1 &amp; co&gt;" in ours[0]  # the callable's value, escaped
    assert "(never)" in ours[1]  # the method's own empty value


def test_without_links_no_cell_links(history: list, root: Any) -> None:
    class Unlinked(EdgeAdmin):
        list_display_links = None

    django, ours = rows(Unlinked(AccessRequest, admin.AdminSite(name="admin")), root)
    assert ours == django
    assert all("<a href" not in row for row in ours)


def test_a_model_without_a_change_url_shows_its_first_column_unlinked(root: Any) -> None:
    from apps.reviews.models import ReviewSchedule

    ReviewSchedule.objects.create(key="prod", name="Prod <review>", every="quarter", due_days=14)
    ReviewSchedule.objects.create(key="lab", name="Lab", every="month", due_days=7, is_active=False)

    class Schedules(admin.ModelAdmin):  # not in the portal's admin: no change URL to link
        list_display = ["key", "name", "every", "is_active", "resources"]
        ordering = ["key"]

    django, ours = rows(Schedules(ReviewSchedule, admin.AdminSite(name="admin")), root)
    assert len(ours) == 2 and ours == django
    assert '<th class="field-key">lab</th>' in ours[0]
    assert all("<a href" not in row for row in ours)


def test_a_change_url_for_a_key_that_is_not_a_number_is_djangos() -> None:
    request = RequestFactory().get("/admin/access/accessrequest/", {"q": "x"})
    request.user = UserFactory(is_superuser=True, is_staff=True)
    cl = EdgeAdmin(AccessRequest, admin.AdminSite(name="admin")).get_changelist_instance(request)
    url = _ChangeUrl(cl)
    assert url(7) == "/admin/access/accessrequest/7/change/"
    assert url("a/b") == url._django("a/b")
    assert url("a/b").startswith("/admin/access/accessrequest/a_2Fb/change/")


def test_a_popup_keeps_djangos_own_rendering(history: list, root: Any) -> None:
    django, ours = rows(EdgeAdmin(AccessRequest, admin.AdminSite(name="admin")), root, _popup="1")
    assert len(ours) == 3 and ours == django
    assert "data-popup-opener" in ours[0]  # Django's popup link, which fast rows never write


# --- The datetime cells' formatter (issue 24) ------------------------------------------------

_ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Europe/Istanbul"]


@pytest.mark.parametrize(
    "fmt",
    ["D j M Y H:i T", "Y-m-d H:i T", r"\D\a\y j M, H\h i", "N j, Y, P", "l jS F Y H:i:s e"],
)
def test_datetime_cells_read_exactly_as_djangos_formatter(fmt: str) -> None:
    """Every minute-aligned and odd moment across two DST changes, in zones with and without
    abbreviations, aware and naive: the per-list formatter and Django's give the same text
    (ambiguous and imaginary local times included, where Django leaves the zone out)."""
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    from django.utils import translation
    from django.utils.dateformat import format as django_format

    from apps.kit.admin_lists import _DateTimeFormat

    moments = [
        datetime(2026, 3, 29, 0, 0, tzinfo=UTC) + timedelta(minutes=37 * k) for k in range(120)
    ] + [datetime(2026, 10, 25, 0, 0, tzinfo=UTC) + timedelta(minutes=29 * k) for k in range(120)]
    with translation.override("en"):
        ours = _DateTimeFormat(fmt)
        for name in _ZONES:
            zone = ZoneInfo(name)
            for moment in moments:
                local = moment.astimezone(zone)
                for value in (local, local.replace(tzinfo=None), local.replace(fold=1)):
                    assert ours(value) == django_format(value, fmt), (name, value)
        # The settings' format and escaped letters take the fast way; others Django's.
        assert ours.fast == (fmt in ("D j M Y H:i T", r"\D\a\y j M, H\h i"))


def test_datetime_formatters_are_kept_per_format_and_language() -> None:
    """One formatter per format and language: the names a list shows follow the language."""
    from datetime import UTC, datetime

    from django.utils import translation
    from django.utils.dateformat import format as django_format

    from apps.kit.admin_lists import _datetime_format

    moment = datetime(2026, 5, 4, 9, 30, tzinfo=UTC)
    fmt = "D j M Y H:i T"
    with translation.override("en"):
        english = _datetime_format(fmt)
        assert _datetime_format(fmt) is english
        assert english(moment) == django_format(moment, fmt) == "Mon 4 May 2026 09:30 UTC"
    with translation.override("de"):
        german = _datetime_format(fmt)
        assert german is not english
        assert german(moment) == django_format(moment, fmt)
        assert german(moment).startswith("Mo 4 Mai")
