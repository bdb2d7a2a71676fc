import pytest

pytestmark = pytest.mark.django_db


def test_valid_assertion_signs_in(as_user):
    client = as_user("idp|alice", "Alice@Example.com", groups=["engineering"], name="Alice")
    response = client.get("/")
    assert response.status_code == 200
    assert b"Alice" in response.content
