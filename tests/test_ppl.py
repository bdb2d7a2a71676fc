"""apps.ppl: rendering, canonical form, validation and evaluation."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apps.ppl import (
    DENY_ALL_RULE,
    GrantRule,
    digest,
    dumps,
    evaluate,
    normalize,
    render_policy,
    rfc3339,
    validate_ppl,
)

T0 = datetime(2026, 9, 1, 9, 0, tzinfo=UTC)
T1 = datetime(2026, 9, 1, 17, 0, tzinfo=UTC)
BASE = [{"allow": {"and": [{"email": {"is": "admin@example.com"}}]}}]


def grant(email: str, start: datetime = T0, end: datetime = T1) -> GrantRule:
    return GrantRule(email=email, not_before=start, expires_at=end)


def grant_rule(email: str, after: str, before: str) -> dict:
    return {
        "allow": {
            "and": [
                {"email": {"is": email}},
                {"date": {"after": after, "before": before}},
            ]
        }
    }


# ------------------------------------------------------------------ rendering


def test_render_matches_the_documented_grant_rule() -> None:
    assert render_policy([], [grant("alice@example.com")]) == [
        grant_rule("alice@example.com", "2026-09-01T09:00:00Z", "2026-09-01T17:00:00Z")
    ]


def test_render_puts_base_rules_first_then_grants() -> None:
    rules = render_policy(BASE, [grant("bob@example.com")])
    assert rules[0] == BASE[0]
    assert rules[1]["allow"]["and"][0] == {"email": {"is": "bob@example.com"}}
    assert len(rules) == 2


def test_render_keeps_the_email_exactly_as_the_assertion_carried_it() -> None:
    # Pomerium's email criterion is exact, case-sensitive equality with the IdP's value.
    rules = render_policy([], [grant("First.Last@Corp.com")])
    assert rules[0]["allow"]["and"][0] == {"email": {"is": "First.Last@Corp.com"}}


def test_render_sorts_by_email_then_window() -> None:
    later = T0 + timedelta(days=1)
    grants = [
        grant("carol@example.com"),
        grant("alice@example.com", later, later + timedelta(hours=1)),
        grant("Bob@example.com"),
        grant("alice@example.com", T0, T0 + timedelta(hours=2)),
        grant("alice@example.com", T0, T0 + timedelta(hours=1)),
    ]
    rendered = [
        (r["allow"]["and"][0]["email"]["is"], r["allow"]["and"][1]["date"]["before"])
        for r in render_policy([], grants)
    ]
    assert rendered == [
        ("Bob@example.com", "2026-09-01T17:00:00Z"),
        ("alice@example.com", "2026-09-01T10:00:00Z"),
        ("alice@example.com", "2026-09-01T11:00:00Z"),
        ("alice@example.com", "2026-09-02T10:00:00Z"),
        ("carol@example.com", "2026-09-01T17:00:00Z"),
    ]


def test_render_is_byte_identical_for_the_same_input_in_any_order() -> None:
    grants = [grant(f"user{i}@example.com", T0 + timedelta(minutes=i)) for i in range(20)]
    first = dumps(render_policy(BASE, grants))
    assert dumps(render_policy(BASE, list(reversed(grants)))) == first
    assert dumps(render_policy(BASE, grants)) == first


def test_render_without_rules_or_grants_denies_everyone() -> None:
    rules = render_policy([], [])
    assert rules == [DENY_ALL_RULE]
    assert evaluate(rules, "anyone@example.com", T0) is False
    rules[0]["allow"]["and"].append({"accept": True})  # the constant must not be aliased
    assert DENY_ALL_RULE == {"allow": {"and": [{"reject": True}]}}


def test_render_with_only_base_rules_has_no_deny_all() -> None:
    assert render_policy(BASE, []) == BASE


def test_render_copies_base_rules() -> None:
    base = json.loads(json.dumps(BASE))
    rules = render_policy(base, [])
    rules[0]["allow"]["and"].clear()
    assert base == BASE


def test_render_rejects_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="naive"):
        render_policy([], [grant("a@example.com", datetime(2026, 9, 1, 9, 0), T1)])


def test_rfc3339_formats_utc_seconds_with_z() -> None:
    assert rfc3339(T0) == "2026-09-01T09:00:00Z"
    assert rfc3339(T0.replace(microsecond=999_999)) == "2026-09-01T09:00:00Z"  # truncated
    paris = timezone(timedelta(hours=2))
    assert rfc3339(datetime(2026, 9, 1, 11, 0, 30, tzinfo=paris)) == "2026-09-01T09:00:30Z"


def test_rfc3339_rejects_naive() -> None:
    with pytest.raises(ValueError, match="naive"):
        rfc3339(datetime(2026, 9, 1, 9, 0))


# ------------------------------------------------------- canonical form, digest


def test_dumps_is_canonical() -> None:
    a = {"b": [1, {"y": 2, "x": "é"}], "a": True}
    b = {"a": True, "b": [1, {"x": "é", "y": 2}]}
    assert dumps(a) == dumps(b) == '{"a":true,"b":[1,{"x":"é","y":2}]}'


def test_digest_is_sha256_of_dumps() -> None:
    rules = render_policy([], [grant("a@example.com")])
    assert digest(rules) == hashlib.sha256(dumps(rules).encode()).hexdigest()
    assert digest(rules) != digest(render_policy([], [grant("b@example.com")]))


@pytest.mark.parametrize(
    ("remote", "expected"),
    [
        ('[{"allow":{"and":[{"accept":true}]}}]', [{"allow": {"and": [{"accept": True}]}}]),
        ('{"allow":{"and":[{"accept":true}]}}', [{"allow": {"and": [{"accept": True}]}}]),
        ({"allow": {"and": [{"accept": True}]}}, [{"allow": {"and": [{"accept": True}]}}]),
        ("allow:\n  and:\n  - accept: true\n", [{"allow": {"and": [{"accept": True}]}}]),
        (None, []),
        ("", []),
        ("not ppl at all", "not ppl at all"),
    ],
)
def test_normalize(remote: object, expected: object) -> None:
    assert normalize(remote) == expected


def test_normalized_remote_compares_equal_to_what_we_sent() -> None:
    desired = render_policy(BASE, [grant("a@example.com")])
    assert dumps(normalize(dumps(desired))) == dumps(desired)
    assert digest(normalize(json.dumps(desired, indent=2))) == digest(desired)


# ------------------------------------------------------------------ validation


def test_rendered_policies_are_valid() -> None:
    assert validate_ppl(render_policy(BASE, [grant("a@example.com")])) == []
    assert validate_ppl([DENY_ALL_RULE]) == []
    assert validate_ppl(DENY_ALL_RULE) == []
    assert validate_ppl(dumps([DENY_ALL_RULE])) == []


def test_validate_accepts_known_forms() -> None:
    ppl = [
        {
            "allow": {
                "or": [
                    {"email": "a@example.com"},
                    {"user": {"in": ["u1", "u2"]}},
                    {"domain": {"ends_with": "example.com"}},
                    {"groups": {"has": "admins"}},
                    {"claim/groups": "admins"},
                    {"date": {"after": "2026-09-01T09:00:00+02:00"}},
                    {"http_method": {"is": "GET"}},
                ]
            },
            "deny": {"nor": [{"authenticated_user": True}]},
        }
    ]
    assert validate_ppl(ppl) == []


def test_validate_rejects_unknown_criterion() -> None:
    errors = validate_ppl([{"allow": {"and": [{"emails_like": "a@example.com"}]}}])
    assert len(errors) == 1
    assert "unknown criterion 'emails_like'" in errors[0]


@pytest.mark.parametrize("bound", ["2026-09-01", "tomorrow", "20260901T090000Z", 1756717200])
def test_validate_rejects_dates_that_are_not_rfc3339(bound: object) -> None:
    errors = validate_ppl([{"allow": {"and": [{"date": {"before": bound}}]}}])
    assert len(errors) == 1
    assert "RFC 3339" in errors[0]


@pytest.mark.parametrize(
    ("ppl", "fragment"),
    [
        ([{"permit": {"and": [{"accept": True}]}}], "unknown action"),
        ([{"allow": {"xor": [{"accept": True}]}}], "unknown operator"),
        ([{"allow": {"and": {"accept": True}}}], "expected a list"),
        ([{"allow": {"and": [{"accept": True, "reject": True}]}}], "exactly one key"),
        ([{"allow": {"and": [{"email": {"matches": "a"}}]}}], "unknown string matcher"),
        ([{"allow": {"and": [{"email": {"in": "a@example.com"}}]}}], "list of strings"),
        ([{"allow": {"and": [{"date": {"until": "2026-09-01T09:00:00Z"}}]}}], "unknown date"),
        ([{"allow": {"and": [{"groups": {"contains": "x"}}]}}], "unknown list matcher"),
        ([{"allow": []}], "and/or/not/nor"),
        ([{"allow": {"and": [{"email": {"not_in": "a@example.com"}}]}}], "list of strings"),
        (["allow"], "rule must be an object"),
        (42, "rule object or a list"),
        ("{not json", "not valid JSON"),
    ],
)
def test_validate_reports_structural_errors(ppl: object, fragment: str) -> None:
    errors = validate_ppl(ppl)
    assert errors
    assert any(fragment in e for e in errors), errors


# ------------------------------------------------------------------ evaluation


def test_evaluate_grant_window() -> None:
    rules = render_policy([], [grant("alice@example.com")])
    assert evaluate(rules, "alice@example.com", T0 + timedelta(hours=1))
    assert evaluate(rules, "alice@example.com", T0)  # after is inclusive
    assert not evaluate(rules, "alice@example.com", T1)  # before is exclusive
    assert not evaluate(rules, "alice@example.com", T0 - timedelta(seconds=1))
    assert not evaluate(rules, "alice@example.com", T1 + timedelta(seconds=1))
    assert not evaluate(rules, "bob@example.com", T0 + timedelta(hours=1))
    # Matching is case-sensitive, which is why rendering keeps the IdP's spelling.
    assert not evaluate(rules, "Alice@example.com", T0 + timedelta(hours=1))


def test_evaluate_deny_wins_over_allow() -> None:
    rules = [
        {"allow": {"and": [{"accept": True}]}},
        {"deny": {"or": [{"email": {"is": "mallory@example.com"}}]}},
    ]
    assert evaluate(rules, "alice@example.com", T0)
    assert not evaluate(rules, "mallory@example.com", T0)


def test_evaluate_needs_an_allow() -> None:
    assert not evaluate([], "a@example.com", T0)
    assert not evaluate([{"deny": {"and": [{"reject": True}]}}], "a@example.com", T0)


def test_evaluate_operators() -> None:
    a = {"email": {"is": "a@example.com"}}
    domain = {"domain": {"is": "example.com"}}

    def allows(operator: str, email: str) -> bool:
        return evaluate([{"allow": {operator: [a, domain]}}], email, T0)

    assert allows("and", "a@example.com")
    assert not allows("and", "b@example.com")
    assert allows("or", "b@example.com")
    assert not allows("or", "b@other.org")
    assert allows("not", "b@other.org")  # neither matches
    assert not allows("not", "b@example.com")
    assert allows("nor", "b@example.com")  # not all match
    assert not allows("nor", "a@example.com")


def test_evaluate_operators_in_one_body_are_alternatives() -> None:
    # Pomerium's generator ORs the terms of one rule body.
    rule = {"allow": {"and": [{"reject": True}], "or": [{"email": "a@example.com"}]}}
    assert evaluate(rule, "a@example.com", T0)
    assert not evaluate(rule, "b@example.com", T0)


def test_evaluate_string_matchers() -> None:
    def allows(matcher: object, email: str = "alice@example.com") -> bool:
        return evaluate({"allow": {"and": [{"email": matcher}]}}, email, T0)

    assert allows("alice@example.com")
    assert allows({"in": ["bob@example.com", "alice@example.com"]})
    assert allows({"starts_with": "alice@"})
    assert allows({"ends_with": "@example.com"})
    assert allows({"contains": "ce@ex"})
    assert allows({"not": "bob@example.com"})
    assert not allows({"not": "alice@example.com"})
    assert allows({"ends_with": "@example.com", "not": "bob@example.com"})
    assert not allows({"ends_with": "@example.com", "not": "alice@example.com"})


def test_evaluate_groups() -> None:
    def allows(matcher: object, groups: tuple[str, ...]) -> bool:
        return evaluate({"allow": {"and": [{"groups": matcher}]}}, "a@x.org", T0, groups)

    assert allows({"has": "ops"}, ("dev", "ops"))
    assert not allows({"has": "ops"}, ("dev",))
    assert allows("ops", ("ops",))
    assert allows({"is": "ops"}, ("ops",))
    assert not allows({"is": "ops"}, ("ops", "dev"))
    assert allows({"exclude": "contractors"}, ("dev",))
    assert not allows({"exclude": "contractors"}, ("dev", "contractors"))


def test_evaluate_unknown_or_request_criteria_never_match() -> None:
    assert not evaluate({"allow": {"and": [{"made_up": True}]}}, "a@x.org", T0)
    assert not evaluate({"allow": {"and": [{"http_method": "GET"}]}}, "a@x.org", T0)
    assert evaluate({"allow": {"not": [{"made_up": True}]}}, "a@x.org", T0)


def test_evaluate_accepts_json_text_and_fails_closed_on_junk() -> None:
    rules = render_policy([], [grant("a@example.com")])
    assert evaluate(dumps(rules), "a@example.com", T0)
    assert not evaluate("junk", "a@example.com", T0)
    bad_date = {"allow": {"and": [{"date": {"after": "1 September"}}]}}
    assert not evaluate(bad_date, "a@example.com", T1)


def test_evaluate_rejects_naive_instant() -> None:
    with pytest.raises(ValueError, match="aware"):
        evaluate([DENY_ALL_RULE], "a@example.com", datetime(2026, 9, 1))


# ------------------------------------------------------------------ properties

grant_strategy = st.builds(
    GrantRule,
    email=st.sampled_from(["a@x.org", "A@x.org", "b@x.org", "zoë@x.org"]),
    not_before=st.datetimes(
        min_value=datetime(2025, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
    ),
    expires_at=st.datetimes(
        min_value=datetime(2025, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
    ),
)


@given(
    st.lists(grant_strategy, max_size=12).flatmap(
        lambda gs: st.tuples(st.just(gs), st.permutations(gs))
    )
)
def test_render_dumps_is_stable_under_permutation(pair: tuple[list, list]) -> None:
    grants, shuffled = pair
    rendered = dumps(render_policy(BASE, grants))
    assert dumps(render_policy(BASE, shuffled)) == rendered
    assert validate_ppl(json.loads(rendered)) == []


# ---------------------------------------------- no stricter than Pomerium


@pytest.mark.parametrize(
    "ppl",
    [
        [{"allow": {"and": [{"email": {"not_in": ["a@example.com", "b@example.com"]}}]}}],
        [{"allow": {"and": [{"mcp_tool": {"in": ["search"]}}]}}],
        [
            {
                "allow": {
                    "and": [{"ssh_username": {"is": "root"}}, {"ssh_publickey": "ssh-ed25519 A"}]
                }
            }
        ],
        [{"allow": {"or": [{"ssh_username_matches_email": True}, {"ssh_user_ca": "ca"}]}}],
        [{"allow": {"and": [{"ssh_username_matches_claim": "username"}]}}],
        [{}],
        {},
        [{"allow": {}}],
        [{"deny": {"and": []}}],
        [{"allow": {"and": [{"date": {"after": "2150-01-02T16:20:00"}}]}}],
        [{"allow": {"and": [{"http_method": {"in": ["GET", "HEAD"]}}]}}],
        [{"allow": {"and": [{"http_path": {"starts_with": "/api/"}}]}}],
        [{"allow": {"and": [{"day_of_week": "mon-fri"}]}}],
        [{"allow": {"and": [{"claim/department": "sre"}]}}],
    ],
)
def test_validate_accepts_what_pomerium_accepts(ppl: object) -> None:
    assert validate_ppl(ppl) == []


def test_zone_less_date_bounds_are_read_as_utc() -> None:
    from apps.ppl import parse_date_bound

    assert parse_date_bound("2150-01-02T16:20:00") == datetime(2150, 1, 2, 16, 20, tzinfo=UTC)
    assert parse_date_bound("2150-01-02T16:20:00+02:00") == datetime(2150, 1, 2, 14, 20, tzinfo=UTC)
    assert parse_date_bound("tomorrow") is None
    rules = [{"allow": {"and": [{"date": {"after": "2026-09-01T09:00:00"}}]}}]
    assert evaluate(rules, "a@example.com", T0)  # T0 is 09:00 UTC: after is inclusive
    assert not evaluate(rules, "a@example.com", T0 - timedelta(seconds=1))


def test_not_in_matcher_evaluates() -> None:
    rules = [{"allow": {"and": [{"email": {"not_in": ["mallory@example.com"]}}]}}]
    assert evaluate(rules, "alice@example.com", T0)
    assert not evaluate(rules, "mallory@example.com", T0)
