"""On PostgreSQL: a retry that races its original (same Idempotency-Key) files one request."""

from __future__ import annotations

import pytest

from apps.access.models import AccessRequest
from apps.api.models import IdempotencyKey
from tests.access.test_concurrency import race
from tests.factories import ResourceFactory

# Requests need somebody able to approve them (a request nobody could approve is refused).
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("standby_approver"),
]

BODY = {"resource": "grafana-admin", "duration_minutes": 60, "justification": "a good reason"}


@pytest.mark.parametrize("attempt", range(3))
def test_two_posts_with_one_key_at_once_file_one_request(api_as, attempt):
    ResourceFactory(slug="grafana-admin", duration_choices=[60])
    alice = api_as("alice", groups=["engineering"])
    alice.user()

    results = race(
        lambda: alice.post("/requests", BODY, HTTP_IDEMPOTENCY_KEY="retry-me"),
        lambda: alice.post("/requests", BODY, HTTP_IDEMPOTENCY_KEY="retry-me"),
    )

    assert [r.status_code for r in results] == [201, 201]
    assert results[0].json()["id"] == results[1].json()["id"]
    assert AccessRequest.objects.count() == 1
    assert IdempotencyKey.objects.count() == 1
