"""The API refuses hidden and direction-changing characters, class by class, with a
structured 400 naming the field; text already stored is returned exactly (JSON escapes it)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from apps.access.models import AccessRequest
from tests.api.conftest import error
from tests.factories import AccessRequestFactory, GrantFactory
from tests.support.hidden_text import CLASS_IDS, CLASSES, spoof

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("name", CLASS_IDS)
def test_every_text_field_refuses_them_with_a_400(
    alice: Any, bob: Any, grafana: Any, name: str
) -> None:
    pending = AccessRequestFactory(requester=alice.user(), resource=grafana)
    grant = GrantFactory(request__resource=grafana)
    for char in CLASSES[name]:
        calls = {
            "justification": lambda c=char: alice.post(
                "/requests",
                {"resource": "grafana-admin", "duration_minutes": 60, "justification": spoof(c)},
            ),
            "ticket": lambda c=char: alice.post(
                "/requests",
                {
                    "resource": "grafana-admin",
                    "duration_minutes": 60,
                    "justification": "Investigating INC-42 now",
                    "ticket": f"INC{c}42",
                },
            ),
            "note": lambda c=char: bob.post(f"/requests/{pending.pk}/approve", {"note": spoof(c)}),
            "reason": lambda c=char: bob.post(
                f"/requests/{pending.pk}/reject", {"reason": spoof(c)}
            ),
        }
        calls_on_grant = {
            "reason": lambda c=char: bob.post(f"/grants/{grant.pk}/revoke", {"reason": spoof(c)})
        }
        for field, call in [*calls.items(), *calls_on_grant.items()]:
            response = call()
            assert response.status_code == 400, (field, f"U+{ord(char):04X}")
            body = error(response)
            assert body["code"] == "validation_error"
            assert f"U+{ord(char):04X}" in body["fields"][field], body
    assert AccessRequest.objects.count() == 2  # the pending one and the grant's
    pending.refresh_from_db()
    grant.refresh_from_db()
    assert (pending.state, grant.revoked_at) == ("pending", None)


def test_stored_text_is_returned_exactly(alice: Any, grafana: Any) -> None:
    chars = "".join(CLASSES.values())
    req = AccessRequestFactory(requester=alice.user(), resource=grafana, justification=spoof(chars))

    response = alice.get(f"/requests/{req.pk}")

    assert response.json()["justification"] == spoof(chars)
    # The JSON text carries them as \u escapes, never raw.
    assert not any(c in response.content.decode() for c in chars)
    assert json.loads(response.content)["justification"] == req.justification
