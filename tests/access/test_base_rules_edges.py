"""apps.access.base_rules: every way in a base rule opens is named, and what the portal
cannot put in words is shown as the rule itself, never dropped."""

from __future__ import annotations

from typing import Any

import pytest

from apps.access.base_rules import EVERYONE, SIGNED_IN, Subject, subjects


def allow(*criteria: Any, op: str = "and") -> list[dict[str, Any]]:
    return [{"allow": {op: list(criteria)}}]


def kinds(base_ppl: object) -> list[tuple[str, str, str]]:
    return [(s.action, s.kind, s.value) for s in subjects(base_ppl)]


@pytest.mark.parametrize(
    ("criterion", "expected"),
    [
        ({"accept": True}, [("allow", EVERYONE, "")]),
        ({"accept": False}, []),
        ({"authenticated_user": True}, [("allow", SIGNED_IN, "")]),
        ({"authenticated_user": False}, []),
        ({"groups": "sre"}, [("allow", "group", "sre")]),
        ({"groups": ["sre", 5, "dba"]}, [("allow", "group", "sre"), ("allow", "group", "dba")]),
        ({"groups": 5}, []),
        (
            {"groups": {"has": "sre", "exclude": "interns"}},
            [
                ("allow", "group", "sre"),
                ("allow", "rule", '{"groups":{"exclude":"interns","has":"sre"}}'),
            ],
        ),
        (
            {"email": {"in": ["a@x.com", "b@x.com"]}},
            [("allow", "person", "a@x.com"), ("allow", "person", "b@x.com")],
        ),
        ({"email": {"ends_with": "@x.com"}}, [("allow", "pattern", 'ends_with "@x.com"')]),
        ({"email": 5}, [("allow", "rule", "5")]),
        ({"email": {"is": 5}}, []),
        ({"user": "00u123"}, [("allow", "person", "user 00u123")]),
        ({"user": {"starts_with": "00u"}}, [("allow", "pattern", 'starts_with "00u"')]),
        ({"domain": "example.com"}, [("allow", "domain", "example.com")]),
        ({"claim/department": "finance"}, [("allow", "claim", '{"claim/department":"finance"}')]),
    ],
)
def test_each_who_criterion_names_its_subjects(criterion: dict[str, Any], expected: list) -> None:
    assert kinds(allow(criterion)) == expected


def test_the_other_criteria_of_a_term_are_its_conditions() -> None:
    [subject] = subjects(
        allow({"groups": {"has": "sre"}}, {"source_ip": "10.0.0.0/8"}, {"http_method": "GET"})
    )
    assert subject == Subject(
        "allow",
        "group",
        "sre",
        ({"source_ip": "10.0.0.0/8"}, {"http_method": "GET"}),
        1,
    )
    assert subject.conditions_text == '[{"source_ip":"10.0.0.0/8"},{"http_method":"GET"}]'


def test_a_term_that_names_nobody_lets_in_whoever_meets_its_conditions() -> None:
    [subject] = subjects(allow({"source_ip": "10.0.0.0/8"}))
    assert (subject.kind, subject.value, subject.conditions) == (
        EVERYONE,
        "",
        ({"source_ip": "10.0.0.0/8"},),
    )
    assert Subject("allow", EVERYONE, "").conditions_text == ""


def test_a_term_naming_two_subjects_is_shown_as_the_rule() -> None:
    both = allow({"email": "a@x.com"}, {"groups": "sre"})
    assert kinds(both) == [("allow", "rule", '{"and":[{"email":"a@x.com"},{"groups":"sre"}]}')]
    claim_and_group = allow({"claim/dept": "x"}, {"groups": "sre"})
    assert [s.kind for s in subjects(claim_and_group)] == ["rule"]


def test_or_opens_one_way_in_per_criterion_and_not_is_shown_as_the_rule() -> None:
    assert kinds(allow({"email": "a@x.com"}, {"groups": "sre"}, op="or")) == [
        ("allow", "person", "a@x.com"),
        ("allow", "group", "sre"),
    ]
    assert kinds(allow({"email": "a@x.com"}, op="not")) == [
        ("allow", "rule", '{"not":[{"email":"a@x.com"}]}')
    ]
    assert kinds(allow({"groups": "x"}, op="nor")) == [
        ("allow", "rule", '{"nor":[{"groups":"x"}]}')
    ]


def test_rules_are_numbered_and_deny_is_kept_apart() -> None:
    base = [
        {"allow": {"and": [{"groups": "sre"}]}, "deny": {"and": [{"email": "m@x.com"}]}},
        "not a rule",
        {"allow": {"and": []}, "deny": "nothing"},
        {"allow": {"or": [{"domain": "x.com"}]}},
    ]
    found = subjects(base)
    assert [(s.action, s.kind, s.value, s.rule) for s in found] == [
        ("allow", "group", "sre", 1),
        ("deny", "person", "m@x.com", 1),
        ("allow", "domain", "x.com", 4),
    ]


@pytest.mark.parametrize("base_ppl", [None, {"allow": {"and": [{"accept": True}]}}, "[]"])
def test_anything_but_a_list_of_rules_names_nobody(base_ppl: object) -> None:
    assert subjects(base_ppl) == []


def test_a_malformed_criterion_is_kept_as_a_condition_not_dropped() -> None:
    two_keys = {"email": "a@x.com", "groups": "sre"}
    [subject] = subjects(allow(two_keys))
    assert (subject.kind, subject.conditions) == (EVERYONE, (two_keys,))
