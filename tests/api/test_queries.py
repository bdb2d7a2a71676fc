"""The list endpoints cost the same number of queries for 1 and for 200 objects."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts.models import User
from tests.factories import AccessRequestFactory, GrantFactory, ResourceFactory, UserFactory

pytestmark = pytest.mark.django_db


def queries_for(client, path: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    assert response.status_code == 200, response.content
    return len(captured.captured_queries)


def fill(n: int, alice: User, bob_groups: list[str]) -> None:
    other = UserFactory()
    for _ in range(n):
        resource = ResourceFactory(approver_groups=bob_groups)
        AccessRequestFactory(requester=other, resource=resource)
        GrantFactory(request__requester=alice, request__resource=resource)
        AccessRequestFactory(requester=alice, resource=resource)


# path -> how many rows the list holds after fill(n)
EXPECTED = {"/resources": 1, "/requests": 2, "/grants": 1, "/pending": 1}


@pytest.mark.parametrize("path", sorted(EXPECTED))
def test_list_queries_do_not_grow_with_rows(api_as, django_assert_num_queries, path):
    alice = api_as("alice", groups=["engineering", "approvers"])
    user = alice.user()
    url = f"{path}?limit=500"
    fill(1, user, ["approvers"])
    one = queries_for(alice.client, "/api/v1" + url)
    fill(199, user, ["approvers"])

    with django_assert_num_queries(one):
        response = alice.get(url)

    assert len(response.json()) == 200 * EXPECTED[path]
