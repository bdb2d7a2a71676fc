"""Whatever is typed (or forged) into the request form, the answer is never a 500."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.access.models import AccessRequest
from apps.audit.models import AuditAction, AuditEvent
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
        audited = AuditEvent.objects.filter(action=AuditAction.REQUEST_SUBMITTED).count()
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
