"""apps.access.levels: every criterion an access level may hold reads as a plain sentence;
a shape the words do not know is quoted, never dropped (an approver must see every limit)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from apps.access.levels import (
    NO_LIMIT,
    criteria_meaning,
    criterion_words,
    level_meaning,
    level_summary,
)


@pytest.mark.parametrize(
    ("criterion", "words"),
    [
        ({"http_method": "GET"}, "only the HTTP method GET (reading only: no changes)"),
        (
            {"http_method": {"in": ["GET", "HEAD", "OPTIONS"]}},
            "only the HTTP methods GET, HEAD or OPTIONS (reading only: no changes)",
        ),
        ({"http_method": {"in": ["POST"]}}, "only the HTTP method POST"),
        ({"http_method": {"is": "DELETE"}}, "only the HTTP method DELETE"),
        ({"http_method": {"not_in": ["DELETE", "PUT"]}}, "any HTTP method except DELETE and PUT"),
        ({"http_method": {"not": "DELETE"}}, "any HTTP method except DELETE"),
        ({"http_path": {"starts_with": "/api/"}}, "only paths starting with /api/"),
        ({"http_path": {"ends_with": ".json"}}, "only paths ending in .json"),
        ({"http_path": {"contains": "report"}}, "only paths containing report"),
        (
            {"http_path": {"starts_with": "/api/", "ends_with": ".json"}},
            "only paths starting with /api/, and only paths ending in .json",
        ),
        ({"source_ip": "10.0.0.0/8"}, "only from 10.0.0.0/8"),
        ({"source_ip": ["10.0.0.0/8", "192.0.2.1"]}, "only from 10.0.0.0/8 or 192.0.2.1"),
        ({"ssh_username": {"in": ["deploy"]}}, "only the SSH user deploy"),
        ({"ssh_username_matches_email": True}, "SSH only as the user named by their email address"),
        (
            {"ssh_username_matches_claim": "login"},
            "SSH only as the user named by their 'login' claim",
        ),
        ({"ssh_publickey": "ssh-ed25519 AAAA"}, "SSH only with the listed public keys"),
        (
            {"ssh_ca": "ssh-ed25519 AAAA"},
            "SSH only with a certificate from the listed certificate authority",
        ),
        ({"ssh_user_ca": "x"}, "SSH only with a certificate from the listed certificate authority"),
        ({"mcp_tool": {"in": ["search", "read"]}}, "only the MCP tools search or read"),
        ({"domain": "example.com"}, "only the email domain example.com"),
        ({"claim/department": "finance"}, "only while their 'department' claim is finance"),
        ({"groups": {"has": "oncall"}}, "only while they are in the group oncall"),
        ({"client_certificate": {"fingerprint": "ab"}}, "only with a matching client certificate"),
        ({"device": {"approved": True}}, "only from a matching device"),
        ({"accept": True}, "no further limit"),
        ({"authenticated_user": True}, "no further limit"),
        ({"reject": True}, "never (this level lets nobody in)"),
    ],
)
def test_each_known_criterion_reads_as_words(criterion: dict[str, Any], words: str) -> None:
    assert criterion_words(criterion) == words


@pytest.mark.parametrize(
    "criterion",
    [
        {"http_method": {"matches": "G.*"}},  # not a matcher the words know
        {"http_method": {}},
        {"http_method": 5},
        {"http_path": {"in": []}},
        {"source_ip": []},
        {"source_ip": [10]},
        {"ssh_username_matches_email": False},
        {"ssh_username_matches_claim": ["login"]},
        {"claim": "x"},  # no claim name
        {"groups": {"has": ["a", "b"]}},
        {"groups": "oncall"},
        {"accept": False},
        {"reject": False},
        {"time_of_day": {"timezone": "UTC", "after": "9:00"}},
        {"http_method": "GET", "http_path": "/"},  # two criteria in one object
        ["http_method", "GET"],
    ],
)
def test_shapes_without_words_are_quoted_whole(criterion: Any) -> None:
    words = criterion_words(criterion)
    assert words.startswith("also: ")
    import json

    assert json.loads(words.removeprefix("also: ")) == criterion


def test_write_methods_mixed_with_reads_are_not_called_read_only() -> None:
    assert "reading only" not in criterion_words({"http_method": {"in": ["GET", "POST"]}})
    assert "reading only" not in criterion_words({"http_method": {"not_in": ["POST"]}})


def test_no_criteria_means_no_limit() -> None:
    assert criteria_meaning([]) == [NO_LIMIT]
    assert criteria_meaning(None) == [NO_LIMIT]
    assert criteria_meaning({"http_method": "GET"}) == [NO_LIMIT]
    assert level_meaning(None) == [NO_LIMIT]


def test_a_levels_summary_names_it_and_joins_its_limits() -> None:
    level = SimpleNamespace(
        name="Read-only",
        criteria=[{"http_method": {"in": ["GET", "HEAD"]}}, {"source_ip": "10.0.0.0/8"}],
    )
    assert level_summary(level) == (  # type: ignore[arg-type]
        "Read-only: only the HTTP methods GET or HEAD (reading only: no changes); "
        "only from 10.0.0.0/8"
    )
    assert level_summary(None) == f"Full access: {NO_LIMIT}"
