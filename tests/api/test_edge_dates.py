"""Issue 27, gap 12: dates at the edges of Python's range are a 400 with a field error.

``since=0001-01-01T00:00:00+05:00`` is in year 0 once in UTC: the export and the reports
answered 500. Every date the API takes from a person is now checked against one rule
(``apps.kit.instants``); the paging cursors' dates too (``test_paging``).
"""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import error

EDGES = [
    "0001-01-01T00:00:00+05:00",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59-05:00",
    "9999-12-31",
    "0000-01-01",
]


@pytest.mark.parametrize("value", EDGES)
@pytest.mark.parametrize("field", ["since", "until"])
def test_the_audit_export_refuses_edge_dates_by_field(
    carol: Any, db: Any, field: str, value: str
) -> None:
    response = carol.get("/audit/export", **{field: value})
    assert response.status_code == 400, response.content
    body = error(response)
    assert body["code"] == "validation_error"
    assert set(body["fields"]) == {field}


@pytest.mark.parametrize("value", EDGES)
@pytest.mark.parametrize("field", ["start", "end"])
def test_the_access_report_refuses_edge_dates_by_field(
    carol: Any, grafana: Any, field: str, value: str
) -> None:
    params = {"resource": grafana.slug, "start": "2026-01-01", "end": "2026-02-01", field: value}
    response = carol.get("/reports/access", **params)
    assert response.status_code == 400, response.content
    assert field in error(response)["fields"]


def test_the_earliest_and_latest_usable_bounds_still_work(carol: Any, grafana: Any) -> None:
    response = carol.get(
        "/reports/access",
        resource=grafana.slug,
        start="0001-01-02T00:00:00Z",
        end="9999-12-30T00:00:00Z",
    )
    assert response.status_code == 200
    assert response.json()["rows"] == []
