"""apps.ppl: rendering, canonical form, validation and evaluation."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apps.ppl import (
    CRITERIA_CORE,
    CRITERIA_ZERO,
    DENY_ALL_RULE,
    GrantRule,
    criteria_errors,
    digest,
    dumps,
    evaluate,
    normalize,
    render_policy,
    rfc3339,
    validate_ppl,
)

# Real public keys, as ssh-keygen / cryptography write them.
ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE4jKNqs3f1XDb9wwLke0cPxBI02SSW4slg3us2uVLpa"
ECDSA = (
    "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBFMqxMLtR9+o38kXP"
    "lZKaeEnLPI7w+UW5s9zwQZsDiamVLAHkZGrqf8DfgXHk5rgsGEycWlWZuw8QeGLQ3h+PIE="
)
RSA = (
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC9jaQYxIiBkVDx2PuMvZOtkQ7XfpT68n9b02D4DMQbYH1IbFS0Fm6"
    "zjxxCMGzip5CgA8jhiO5FHOjw1n1gNeohun21aBk5Cz3rbPlLgjs5709wtOiXa+HEXV8GdG5JyC6psmw2jHmf97O4t7"
    "EYfj8UHTmBDEolsKZdqeW6NIKJkQ=="
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


def test_a_grant_rule_is_its_own_key_equal_exactly_when_it_renders_alike() -> None:
    """``GrantRule`` is the sync's hashable rule key: the same instant in another zone or
    with a fraction of a second renders the same rule, so it is the same key; another
    email (case kept), window or criterion is another rule."""
    level = ({"http_method": {"is": "GET"}},)
    paris = timezone(timedelta(hours=2))
    a = GrantRule("a@example.com", T0, T1, level)
    b = GrantRule("a@example.com", (T0 + timedelta(microseconds=500)).astimezone(paris), T1, level)
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert dumps(render_policy([], [a])) == dumps(render_policy([], [b]))
    others = [
        GrantRule("A@example.com", T0, T1, level),
        GrantRule("a@example.com", T0 + timedelta(seconds=1), T1, level),
        GrantRule("a@example.com", T0, T1),
    ]
    for other in others:
        assert other != a and dumps(render_policy([], [other])) != dumps(render_policy([], [a]))
    assert len({a, b, *others}) == 4


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
        [{"allow": {"and": [{"ssh_username": {"is": "root"}}, {"ssh_publickey": ED25519}]}}],
        [{"allow": {"or": [{"ssh_username_matches_email": True}, {"ssh_ca": [ECDSA, RSA]}]}}],
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


# ------------------------------------------- as strict as Pomerium (pkg/policy/criteria)


@pytest.mark.parametrize(
    "criterion",
    [
        {"source_ip": "10.0.0.0/8"},
        {"source_ip": "10.0.0.1/24"},  # host bits set: Go's ParseCIDR accepts it
        {"source_ip": ["192.0.2.7", "2001:db8::/32", "::ffff:10.0.0.1/120"]},
        {"source_ip": "10.0.0.0/08"},  # Go's prefix parser takes leading zeros
        {"ssh_publickey": f"# a comment\n\n{ED25519} alice@laptop"},
        {"ssh_publickey": f'from="10.0.0.0/8,192.0.2.1",no-pty {ED25519}'},
        {"ssh_ca": ECDSA},
        {"device": {"type": "enclave_only", "approved": True}},
        {"device": {"is": "5Vn3C1RS"}},
        {
            "client_certificate": {
                "fingerprint": "17859273e8a980631d367b2d5a6a6635412b0f22835f69e47b3f65624546a704"
            }
        },
        {"client_certificate": {"fingerprint": [":".join(["AB"] * 32)]}},
        {"client_certificate": {"spki_hash": "FsDbM0rUYIiL3V339eIKqiz6HPSB+Pz2WeAWhqlqh8U="}},
        {"client_certificate": {"san_email": {"ends_with": "@example.com"}}},
        {"day_of_week": "*"},
        {"day_of_week": "Mon,wed,friday"},
        {"day_of_week": "fri-mon"},
        {"time_of_day": {"timezone": "UTC", "after": "2:20:00", "before": "4:30PM"}},
        {"time_of_day": {"timezone": "Europe/Berlin", "after": "3 PM"}},
        {"time_of_day": {"timezone": "America/Phoenix", "before": "15:04:05.999999999"}},
        {"time_of_day": {"timezone": "Asia/Tokyo", "after": "9:05 AM", "before": "12PM"}},
        {"mcp_tool": {"not_in": ["drop_table"]}},
        {"record": {"type": "example.com/geoip", "field": "country", "is": "US"}},
    ],
)
def test_values_pomerium_accepts_are_valid(criterion: dict[str, Any]) -> None:
    assert validate_ppl([{"allow": {"and": [criterion]}}]) == []


@pytest.mark.parametrize(
    ("criterion", "fragment"),
    [
        ({"source_ip": "10.0.0.0/33"}, "prefix length must be 0-32"),
        ({"source_ip": "2001:db8::/129"}, "prefix length must be 0-128"),
        ({"source_ip": "010.0.0.1"}, "not an IP address"),  # Go refuses leading zeros
        ({"source_ip": "10.0.0.0/255.0.0.0"}, "prefix length"),  # a netmask, not a length
        ({"source_ip": "fe80::1%eth0"}, "zone"),
        ({"source_ip": " 10.0.0.1"}, "not an IP address"),
        ({"source_ip": []}, "non-empty list"),
        ({"source_ip": [10]}, "expected an IP address"),
        ({"ssh_publickey": "ssh-ed25519 A"}, "not valid base64"),
        ({"ssh_publickey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE4j"}, "truncated"),
        ({"ssh_publickey": ED25519.replace("ssh-ed25519 ", "")}, "not an SSH public key"),
        ({"ssh_publickey": [ED25519, "nonsense"]}, "not an SSH public key"),
        ({"ssh_ca": ECDSA[:-8] + "AAAAAAA="}, "not an SSH public key"),  # off the curve
        ({"ssh_user_ca": ED25519}, "unknown criterion 'ssh_user_ca'"),
        ({"pomerium_routes": True}, "unknown criterion 'pomerium_routes'"),
        ({"device": "any"}, "expected an object"),
        ({"device": {"kind": "any"}}, "unexpected field 'kind'"),
        ({"device": {"is": 5}}, "is: expected a string"),
        ({"client_certificate": {"fingerprint": "17:85"}}, "fingerprint"),
        ({"client_certificate": {"spki_hash": "c2hvcnQ="}}, "spki_hash"),
        ({"client_certificate": {"subject": "x"}}, "unsupported certificate matcher"),
        ({"client_certificate": {"san_dns": {"like": "x"}}}, "unknown string matcher"),
        ({"ssh_username_matches_claim": ["a"]}, "claim's name"),
        ({"day_of_week": "mon-fri-sat"}, "not a day or a range"),
        ({"day_of_week": "weekdays"}, "not a day or a range"),
        ({"day_of_week": "mon, wed"}, "not a day or a range"),
        ({"day_of_week": ""}, "expected a string"),
        ({"time_of_day": {"after": "09:00"}}, "timezone is required"),
        ({"time_of_day": {"timezone": "Mars/Olympus", "after": "09:00"}}, "unknown time zone"),
        ({"time_of_day": {"timezone": "UTC"}}, "after and/or before"),
        ({"time_of_day": {"timezone": "UTC", "after": "25:00"}}, "hour out of range"),
        ({"time_of_day": {"timezone": "UTC", "after": "13 PM"}}, "hour out of range"),
        ({"time_of_day": {"timezone": "UTC", "after": "9:5"}}, "not a time"),
        ({"time_of_day": {"timezone": "UTC", "after": "3pm"}}, "not a time"),  # Go: PM only
        ({"time_of_day": {"timezone": "UTC", "after": "9:00", "at": "x"}}, "unknown time_of_day"),
        ({"mcp_tool": {"matches": "x"}}, "unknown string matcher"),
        ({"ssh_username": {"in": "root"}}, "list of strings"),
    ],
)
def test_values_pomerium_refuses_are_errors(criterion: dict[str, Any], fragment: str) -> None:
    errors = validate_ppl([{"allow": {"and": [criterion]}}])
    assert errors and any(fragment in e for e in errors), errors


def test_the_registry_is_per_flavour() -> None:
    assert {"date", "day_of_week", "time_of_day", "record"} == CRITERIA_ZERO - CRITERIA_CORE
    window = [{"allow": {"and": [{"date": {"before": "2150-01-02T16:20:00Z"}}]}}]
    assert validate_ppl(window) == []
    assert validate_ppl(window, criteria=CRITERIA_CORE) == [
        "rule[0].allow.and[0]: unknown criterion 'date'"
    ]
    level = [{"http_method": "GET"}, {"time_of_day": {"timezone": "UTC", "after": "9:00"}}]
    assert criteria_errors(level) == []
    assert criteria_errors(level, criteria=CRITERIA_CORE) == [
        "criteria[1]: unknown criterion 'time_of_day'"
    ]
    assert criteria_errors([{"source_ip": "10.0.0.0/33"}]) == [
        "criteria[0].source_ip: '10.0.0.0/33': the prefix length must be 0-32"
    ]


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


def test_the_written_contract_names_zeros_registry() -> None:
    """The simulator reads its criterion names from the contract schema, the portal from
    CRITERIA_ZERO: both are Pomerium's registry, so they must name the same criteria."""
    from apps.pomerium import contract

    criterion = contract.schema("PPL")["$defs"]["Criterion"]
    assert set(criterion["properties"]) | {"claim"} == set(CRITERIA_ZERO)
