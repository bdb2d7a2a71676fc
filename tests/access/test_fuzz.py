"""Whatever is typed (or forged) into the request form, the answer is never a 500."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.access.actions import AccessAction
from apps.access.models import AccessRequest
from apps.audit.models import AuditEvent
from tests.factories import ResourceFactory

pytestmark = pytest.mark.django_db

# Text a browser can send: any code point except lone surrogates (not encodable as UTF-8).
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=300)
huge = st.builds(
    lambda c, n: c * n, st.characters(blacklist_categories=("Cs",)), st.integers(1, 10_000)
)
numbers = st.integers(min_value=-(10**30), max_value=10**30).map(str)
dates = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30))
datetime_local = dates.map(lambda d: d.strftime("%Y-%m-%dT%H:%M"))


def soon(hours: int) -> str:
    return (timezone.now() + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M")


# A form a person could fill in correctly...
valid = st.fixed_dictionaries(
    {
        "resource": st.sampled_from(["grafana", "vault", "sre-only", "archived"]),
        "duration": st.sampled_from(["60", "240", "30"]),
        "justification": st.just("Investigating INC-1234 on the primary"),
        "ticket": st.sampled_from(["", "INC-1"]),
        "start": st.sampled_from(["now", "later"]),
        "start_at": st.integers(1, 24 * 29).map(soon),
        "tz": st.sampled_from(["", "Europe/Berlin", "Etc/GMT-14", "Etc/GMT+12"]),
    }
)
# ...with up to three fields replaced by anything at all (or removed).
junk = st.one_of(text, huge, numbers, datetime_local)
overrides = st.dictionaries(
    st.sampled_from(["resource", "duration", "justification", "ticket", "start", "start_at", "tz"]),
    st.one_of(junk, st.none()),
    max_size=3,
)


def fill(base: dict[str, str], changes: dict[str, str | None]) -> dict[str, str]:
    data = {**base, **{k: v for k, v in changes.items() if v is not None}}
    return {k: v for k, v in data.items() if changes.get(k, "") is not None}


form_data = st.builds(fill, valid, overrides)


@pytest.fixture
def client(signed_in: Any) -> Any:
    ResourceFactory(slug="grafana", duration_choices=[60, 240])
    ResourceFactory(slug="vault", duration_choices=[30], allow_scheduled=False)
    ResourceFactory(slug="sre-only", requester_groups=["sre"])
    ResourceFactory(slug="archived", is_active=False)
    client, _ = signed_in("alice", groups=["engineering"])
    return client


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=form_data)
def test_new_request_form_never_fails(client: Any, data: dict[str, str]) -> None:
    # Each example runs in a savepoint that is rolled back, so examples do not see each
    # other's requests (a second valid one would only meet "already pending").
    with transaction.atomic():
        response = client.post("/requests/new", data)
        created = AccessRequest.objects.count()
        audited = AuditEvent.objects.filter(action=AccessAction.REQUEST_SUBMITTED).count()
        assert response.status_code in (200, 302)
        if response.status_code == 302:
            assert (created, audited) == (1, 1)
            assert response["Location"] == f"/requests/{AccessRequest.objects.get().pk}"
        else:
            assert (created, audited) == (0, 0)
            assert response.context["form"].errors
        transaction.set_rollback(True)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(resource=st.one_of(text, huge), path_id=st.one_of(numbers, text))
def test_query_strings_and_ids_never_fail(client: Any, resource: str, path_id: str) -> None:
    assert client.get("/requests/new", {"resource": resource}).status_code == 200
    detail = client.get(f"/requests/{path_id.strip('/?#')}")
    assert detail.status_code in (200, 301, 404)


# --- Dates at the edges of Python's range (issue 27, gap 12) --------------------------------

# Instants a day or less from year 1 or 9999, with offsets that push them over the edge in
# UTC, as a person types them; and ordinary ones, which must keep working.
EDGE_DATES = [
    "0001-01-01T00:00:00+05:00",
    "0001-01-01 00:00:00+05:00",
    "0001-01-01",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59-05:00",
    "9999-12-31",
    "0000-01-01",
    "10000-01-01",
]
offsets = st.sampled_from(["", "Z", "+05:00", "-05:00", "+14:00", "-12:00"])
edge = st.builds(
    lambda day, clock, offset: f"{day:%Y-%m-%d}{clock}{offset}",
    st.sampled_from(
        [datetime(1, 1, 1), datetime(1, 1, 2), datetime(9999, 12, 30), datetime(9999, 12, 31)]
    ),
    st.sampled_from(["", "T00:00:00", " 00:00:00", "T23:59:59", " 23:59:59"]),
    offsets,
)


@pytest.fixture
def auditor_client(signed_in: Any) -> Any:
    ResourceFactory(slug="grafana")
    client, _ = signed_in("carol", groups=["compliance"])
    return client


def admin_filters_answer(client: Any, value: str) -> list[int]:
    return [
        client.get(url, {name: value}).status_code
        for url, name in (
            ("/admin/access/accessrequest/", "created_at__gte"),
            ("/admin/access/grant/", "not_before__lt"),
            ("/admin/audit/auditevent/", "created_at__gte"),
        )
    ]


@pytest.mark.parametrize("value", EDGE_DATES)
def test_edge_dates_in_admin_filters_are_a_readable_400(auditor_client: Any, value: str) -> None:
    assert admin_filters_answer(auditor_client, value) == [400, 400, 400]
    page = auditor_client.get("/admin/access/accessrequest/", {"created_at__gte": value})
    assert page["Content-Type"].startswith("text/plain")
    text = page.content.decode()
    assert text.startswith(f"The filter created_at__gte: {value!r} ")
    assert "nothing was shown" in text


@pytest.mark.parametrize("params", [{"created_at__year": "1"}, {"created_at__year": "99999"}])
def test_edge_years_in_the_date_hierarchy_are_a_400(signed_in: Any, params: dict[str, str]) -> None:
    client, _ = signed_in("root", groups=["portal-admins"])
    assert client.get("/admin/notifications/notification/", params).status_code == 400


def test_ordinary_date_filters_still_work(auditor_client: Any) -> None:
    now = timezone.now()
    today = {
        "created_at__gte": f"{now:%Y-%m-%d} 00:00:00+00:00",
        "created_at__lt": f"{now + timedelta(days=1):%Y-%m-%d} 00:00:00+00:00",
    }
    assert auditor_client.get("/admin/access/accessrequest/", today).status_code == 200
    assert (
        auditor_client.get(
            "/admin/access/grant/", {"not_before__gte": "0001-01-02 00:00:00+00:00"}
        ).status_code
        == 200
    )


@pytest.mark.parametrize("value", EDGE_DATES)
@pytest.mark.parametrize("field", ["since", "until"])
def test_edge_dates_on_the_export_page_are_a_field_error(
    auditor_client: Any, field: str, value: str
) -> None:
    response = auditor_client.post("/audit/export", {field: value, "format": "csv"})
    if (field, value) == ("until", "0001-01-01"):
        # The end of that day, 0001-01-02 00:00 UTC: a bound the portal can use (nothing
        # is that old).
        assert response.status_code == 200
        assert b"".join(response.streaming_content).count(b"\n") == 1  # the header row
        return
    assert response.status_code == 400
    assert field in response.context["form"].errors


@pytest.mark.parametrize("value", EDGE_DATES)
@pytest.mark.parametrize("field", ["start", "end"])
def test_edge_dates_in_the_access_report_are_a_field_error(
    auditor_client: Any, field: str, value: str
) -> None:
    data = {"resource": "grafana", "start": "2026-01-01", "end": "2026-02-01", field: value}
    for download in ("", "csv"):
        response = auditor_client.post(
            "/admin/access/grant/access-report/", {**data, "download": download}
        )
        assert response.status_code == 400
        assert field in response.context["form"].errors


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(value=st.one_of(edge, datetime_local, text))
def test_dates_typed_anywhere_never_fail(auditor_client: Any, value: str) -> None:
    for status in admin_filters_answer(auditor_client, value):
        assert status in (200, 302, 400)
    export = auditor_client.post("/audit/export", {"since": value, "format": "csv"})
    assert export.status_code in (200, 400)
    report = auditor_client.post(
        "/admin/access/grant/access-report/",
        {"resource": "grafana", "start": value, "end": "2026-02-01"},
    )
    assert report.status_code in (200, 400)
