"""The pages tell the truth, in real Chromium against the portal (issue 25's acceptance).

The portal runs in this process (pytest-django's live server) with its clock set by
time-machine, so "Sunday 21:13 in Berlin" is a moment the test chooses; Chromium sends the
Pomerium assertion with every request, as Pomerium would. The demo stack's story (with a
real worker and the Zero simulator) is in ``test_demo_story.py``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine

from apps.access import services
from apps.access.models import AccessRequest
from apps.access.states import GrantState, SyncStatus
from apps.accounts.models import User
from tests.factories import GrantFactory, ResourceFactory, UserFactory
from tests.support.jwks import SigningKey, claims_for, mint

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WEEKDAYS = {"days": "mon-fri", "after": "09:00", "before": "17:00", "timezone": "Europe/Berlin"}
SUNDAY_EVENING = datetime(2026, 3, 1, 20, 13, tzinfo=UTC)  # Sun 21:13 in Berlin
# A time of day as the pages write it, and what must follow it: a zone or an offset, or
# (in a schedule's plain words) the window's other end and its named zone.
CLOCK = re.compile(r"(?<![\d:])(\d{1,2}:\d{2})(?![\d])")
LABELLED = re.compile(
    r"^(:\d{2})? ([A-Z]{2,5}|[+-]\d{2}(:?\d{2})?)\b|^-\d{2}:\d{2} \([A-Za-z_]+/[A-Za-z_]+\)"
)


def unlabelled_times(text: str) -> list[str]:
    """Every time in ``text`` that does not say its zone, with what follows it."""
    found = []
    for match in CLOCK.finditer(text):
        after = text[match.end() : match.end() + 40]
        before = text[max(0, match.start() - 6) : match.start()]
        if LABELLED.match(after) or re.search(r"\d{2}:\d{2}-$", before):
            continue  # labelled, or the closing end of a schedule window "09:00-17:00 (Zone)"
        if before.endswith('"'):
            continue  # a schedule's stored JSON on the admin's page: it names its "timezone"
        found.append(f"{match.group(1)}{after[:20]!r}")
    return found


@pytest.fixture(scope="module", autouse=True)
def _portal_in_this_process(django_db_setup: Any) -> Iterator[None]:
    """The test database first, then Chromium: Playwright's sync API runs an event loop in
    this thread, and Django refuses ORM calls beside one unless told they are safe (they
    are: the test's own calls between page steps, synchronous)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


@pytest.fixture
def clock() -> Iterator[Any]:
    with time_machine.travel(SUNDAY_EVENING, tick=True) as traveller:
        yield traveller


class Person:
    """One browser context signed in through (the test's stand-in for) Pomerium."""

    def __init__(
        self, browser: Any, live_server: Any, key: SigningKey, name: str, groups: list[str],
        zone: str = "Europe/Berlin",
    ) -> None:  # fmt: skip
        self.base = live_server.url
        token = mint(key, claims_for(f"idp|{name}", f"{name}@example.com", groups=groups,
                                     name=name.title(), lifetime=3600))  # fmt: skip
        self.context = browser.new_context(
            viewport={"width": 1280, "height": 900},
            locale="en-GB",
            timezone_id=zone,
            extra_http_headers={"X-Pomerium-Jwt-Assertion": token},
        )
        self.context.set_default_timeout(20_000)
        self.page = self.context.new_page()

    def open(self, path: str) -> Any:
        self.page.goto(self.base + path)
        return self.page

    def text(self, selector: str = "main") -> str:
        return str(self.page.inner_text(selector))

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def people(browser: Any, live_server: Any, signing_key: SigningKey) -> Iterator[Any]:
    opened: list[Person] = []

    def make(name: str, groups: list[str], zone: str = "Europe/Berlin") -> Person:
        person = Person(browser, live_server, signing_key, name, groups, zone)
        opened.append(person)
        return person

    yield make
    for person in opened:
        person.close()


def user(name: str, zone: str = "Europe/Berlin") -> User:
    found = User.objects.get(username=f"idp|{name}")
    found.time_zone = zone
    found.save()
    return found


def test_outside_the_window_the_pages_say_opens_monday_never_allowed_now(clock, people):
    alice = people("alice", ["engineering"])
    alice.open("/")
    me = user("alice")
    prod = ResourceFactory(
        slug="prod-db", name="Prod DB console", duration_choices=[60, 120], schedule=WEEKDAYS
    )
    grant = GrantFactory(
        request__requester=me,
        request__resource=prod,
        schedule=WEEKDAYS,
        not_before=SUNDAY_EVENING,
        expires_at=SUNDAY_EVENING + timedelta(hours=18),  # Monday 15:13 in Berlin
        sync_status=SyncStatus.LIVE,
        live_at=SUNDAY_EVENING,
    )

    page = alice.open("/")
    dashboard = alice.text()
    badges = page.locator("table.grants .badge.access-opens").count()
    alice.open(f"/requests/{grant.request_id}")
    detail = alice.text()

    assert badges == 1
    for text in (dashboard, detail):
        assert "Opens Mon 09:00 CET" in text, text
        assert "Allowed now" not in text, text


@pytest.mark.usefixtures("standby_approver")  # a request nobody could approve is refused
def test_a_request_for_now_outside_the_window_is_refused_and_offered_for_monday(clock, people):
    alice = people("alice", ["engineering"])
    alice.open("/")
    user("alice")
    ResourceFactory(
        slug="prod-db", name="Prod DB console", duration_choices=[60, 120], schedule=WEEKDAYS
    )

    page = alice.open("/requests/new?resource=prod-db")
    assert page.locator("#start-at").is_hidden()  # "Start at" only when chosen
    page.select_option("#id_duration", label="2 hours")
    page.fill("#id_justification", "Check the orders table")
    page.click("button:has-text('Send request')")

    error = page.locator("#id_start_error").inner_text()
    assert "no window is open now. Its next window opens Mon 2 Mar 2026 09:00 CET." in error
    assert page.locator("#start-at").is_visible()
    assert page.input_value("#id_start_at") == "2026-03-02T09:00"
    assert not AccessRequest.objects.exists()
    page.click("button:has-text('Send request')")
    page.wait_for_url(re.compile(r"/requests/\d+$"))
    req = AccessRequest.objects.get()
    assert req.start_at == datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def test_a_scheduled_grant_shows_when_it_opens(clock, people):
    alice = people("alice", ["engineering"])
    alice.open("/")
    me = user("alice")
    start = SUNDAY_EVENING + timedelta(days=2, hours=-8)  # Tue 13:13 in Berlin
    GrantFactory(
        request__requester=me,
        request__resource=ResourceFactory(slug="grafana", name="Grafana"),
        state=GrantState.SCHEDULED,
        not_before=start,
        expires_at=start + timedelta(hours=1),
        sync_status=SyncStatus.LIVE,
        live_at=SUNDAY_EVENING,
    )

    page = alice.open("/")

    assert page.locator("table.grants .badge").inner_text() == "Opens Tue 13:13 CET"
    assert page.locator(".badge.access-allowed").count() == 0


def test_a_revoked_request_shows_its_outcome(clock, people):
    alice = people("alice", ["engineering"])
    alice.open("/")
    me = user("alice")
    bob = UserFactory(username="idp|bob", email="bob@example.com", groups=["approvers"])
    grant = GrantFactory(
        request__requester=me, request__resource=ResourceFactory(slug="grafana", name="Grafana")
    )
    services.revoke_grant(grant, actor=bob, reason="done")

    page = alice.open(f"/requests/{grant.request_id}")
    outcome = page.locator("#request-outcome").inner_text()
    dashboard = alice.open("/")

    assert outcome == "Approved → revoked by bob@example.com at 21:13 CET"
    assert dashboard.locator(f"tr[data-request='{grant.request_id}'] td.outcome").inner_text() == (
        "Approved → revoked by bob@example.com at 21:13 CET"
    )


def test_every_time_on_the_pages_and_the_admin_lists_names_its_zone(clock, people):
    root = people("root", ["portal-admins"], zone="Asia/Kolkata")
    root.open("/")
    admin = user("root", zone="Asia/Kolkata")
    alice = UserFactory(username="idp|alice", email="alice@example.com")
    prod = ResourceFactory(slug="prod-db", name="Prod DB console", schedule=WEEKDAYS)
    grant = GrantFactory(
        request__requester=admin,
        request__resource=prod,
        schedule=WEEKDAYS,
        not_before=SUNDAY_EVENING - timedelta(hours=1),
        expires_at=SUNDAY_EVENING + timedelta(days=1),
        sync_status=SyncStatus.LIVE,
        live_at=SUNDAY_EVENING,
    )
    other = services.submit_request(
        requester=alice,
        resource=ResourceFactory(slug="grafana", name="Grafana"),
        duration_minutes=60,
        justification="Tune the alerts",
        start_at=SUNDAY_EVENING + timedelta(days=1),
    )

    for path in (
        "/",
        f"/requests/{grant.request_id}",
        f"/requests/{other.pk}",
        "/admin/access/grant/",
        "/admin/access/accessrequest/",
        "/admin/audit/auditevent/",
        f"/admin/access/grant/{grant.pk}/change/",
    ):
        page = root.open(path)
        selector = "#content" if path.startswith("/admin/") else "main"
        text = str(page.inner_text(selector))
        assert CLOCK.search(text), (path, text)  # the page shows times at all
        assert unlabelled_times(text) == [], (path, unlabelled_times(text))
    assert "IST" in text  # the reader's zone, India


def test_the_first_page_after_sign_in_is_in_the_browsers_zone(people):
    dave = people("dave", ["engineering"], zone="America/New_York")

    page = dave.open("/")
    # The first answer was rendered before the portal knew the zone; the page's script
    # told it (a cookie) and showed the page again.
    page.locator("text=Times are shown in America/New_York.").wait_for()

    assert "Times are shown in America/New_York." in dave.text()


def test_each_person_picks_their_own_zone_in_the_preferences_select(people):
    """The zone select is rendered once per distinct input in a process; two people on the
    same server each see and keep only their own choice."""
    alice = people("alice", ["engineering"], zone="Europe/Berlin")
    bob = people("bob", ["engineering"], zone="America/New_York")

    page = alice.open("/preferences")
    page.select_option("#id_time_zone", "Asia/Tokyo")
    page.click("main button:has-text('Save')")
    page.locator("text=Your preferences were saved.").wait_for()
    alice_choice = page.input_value("#id_time_zone")
    bob_page = bob.open("/preferences")
    bob_choice = bob_page.input_value("#id_time_zone")
    bob_page.select_option("#id_time_zone", "America/Denver")
    bob_page.click("main button:has-text('Save')")
    bob_page.locator("text=Your preferences were saved.").wait_for()

    assert (alice_choice, bob_choice) == ("Asia/Tokyo", "")
    assert alice.open("/preferences").input_value("#id_time_zone") == "Asia/Tokyo"
    assert bob.open("/preferences").input_value("#id_time_zone") == "America/Denver"
    alice.open("/")
    assert "Times are shown in Asia/Tokyo." in alice.text()
    assert User.objects.get(username="idp|bob").time_zone == "America/Denver"
