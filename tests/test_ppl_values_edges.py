"""apps.ppl_values and apps.ppl at their edges: every value Pomerium refuses is an error with
a reason, every value it accepts is not.

SSH keys are built in the SSH wire format (RFC 4251/4253; certificates as OpenSSH's
PROTOCOL.certkeys describes them, written here by ``cryptography``), so each refusal names
one defect in an otherwise well-formed key.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from apps.ppl import criteria_errors, evaluate, normalize, parse_date_bound, validate_ppl
from apps.ppl_values import day_errors, ssh_key_error, time_of_day_error, value_errors

AT = dt.datetime(2026, 9, 1, 9, 0, tzinfo=dt.UTC)


def s(data: bytes) -> bytes:
    """An SSH ``string``: uint32 length, then the bytes."""
    return len(data).to_bytes(4, "big") + data


def mpint(value: int) -> bytes:
    if value == 0:
        return s(b"")
    size = (value.bit_length() + 8) // 8  # room for the sign bit
    return s(value.to_bytes(size, "big", signed=True))


def line(blob: bytes, algorithm: str = "ssh-x") -> str:
    return f"{algorithm} {base64.b64encode(blob).decode()}"


def ed25519_point() -> bytes:
    return (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )


def p256_point() -> bytes:
    return (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )


RSA_N = (1 << 1023) + 12345  # any positive modulus: the parser checks signs, not primes


def rsa(exponent: int, modulus: int = RSA_N) -> bytes:
    return s(b"ssh-rsa") + mpint(exponent) + mpint(modulus)


def ed25519_blob(point: bytes | None = None) -> bytes:
    return s(b"ssh-ed25519") + s(point if point is not None else ed25519_point())


def certificate(*, signer: bytes | None = None, cut: int | None = None) -> bytes:
    """An ssh-ed25519 user certificate in wire form; ``cut`` truncates it after that many
    bytes of the part after the key."""
    tail = (
        (1).to_bytes(8, "big")  # serial
        + (1).to_bytes(4, "big")  # type: user
        + s(b"key-id")
        + s(s(b"alice"))
        + (0).to_bytes(8, "big")
        + (2**64 - 1).to_bytes(8, "big")
        + s(b"")
        + s(b"")
        + s(b"")
        + s(signer if signer is not None else ed25519_blob())
        + s(s(b"ssh-ed25519") + s(b"\0" * 64))
    )
    if cut is not None:
        tail = tail[:cut]
    return s(b"ssh-ed25519-cert-v01@openssh.com") + s(b"\0" * 32) + s(ed25519_point()) + tail


# ------------------------------------------------------------------ keys Pomerium accepts


@pytest.mark.parametrize(
    "blob",
    [
        pytest.param(rsa(65537), id="rsa"),
        pytest.param(rsa(3), id="rsa-smallest-exponent"),
        pytest.param(s(b"ssh-dss") + mpint(23) + mpint(11) + mpint(4) + mpint(8), id="dss"),
        pytest.param(
            s(b"sk-ssh-ed25519@openssh.com") + s(ed25519_point()) + s(b"ssh:"), id="sk-ed25519"
        ),
        pytest.param(
            s(b"sk-ecdsa-sha2-nistp256@openssh.com")
            + s(b"nistp256")
            + s(p256_point())
            + s(b"ssh:"),
            id="sk-ecdsa",
        ),
        pytest.param(certificate(), id="ed25519-certificate"),
    ],
)
def test_well_formed_keys_of_every_type_are_accepted(blob: bytes) -> None:
    assert ssh_key_error(line(blob)) is None
    assert value_errors("ssh_ca", [line(blob)], lambda _: []) == []


def test_a_certificate_cryptography_signed_is_accepted() -> None:
    ca = ec.generate_private_key(ec.SECP256R1())
    user = ed25519.Ed25519PrivateKey.generate()
    cert = (
        serialization.SSHCertificateBuilder()
        .public_key(user.public_key())
        .serial(7)
        .type(serialization.SSHCertificateType.USER)
        .key_id(b"alice")
        .valid_principals([b"alice"])
        .valid_after(0)
        .valid_before(2**63)
        .sign(ca)
    )
    text = cert.public_bytes().decode()
    assert text.startswith("ssh-ed25519-cert-v01@openssh.com ")
    assert ssh_key_error(text) is None


# ------------------------------------------------------------------ keys Pomerium refuses


@pytest.mark.parametrize(
    ("blob", "reason"),
    [
        (b"\0\0", "truncated key"),
        (rsa(2**24 + 1), "RSA exponent too large"),
        (rsa(65536), "incorrect RSA exponent"),
        (rsa(1), "incorrect RSA exponent"),
        (rsa(65537, 0), "invalid RSA modulus"),
        (rsa(65537, -5), "invalid RSA modulus"),
        (s(b"ssh-dss") + mpint(23) + mpint(11) + mpint(4), "truncated key"),
        (s(b"ecdsa-sha2-nistp384") + s(b"nistp256") + s(p256_point()), "curve name"),
        (s(b"ssh-ed25519") + s(b"\1" * 31), "an Ed25519 key is 32 bytes"),
        (s(b"sk-ssh-ed25519@openssh.com") + s(ed25519_point()), "truncated key"),
        (s(b"ssh-foo") + s(b"x"), "unknown key type 'ssh-foo'"),
        (ed25519_blob() + b"x", "trailing data after the key"),
        (certificate(cut=11), "truncated certificate"),
        (certificate(cut=12 + 10 + 13 + 15), "truncated certificate"),
        (certificate(signer=ed25519_blob() + b"x"), "trailing data in the certificate"),
        (certificate(signer=s(b"ssh-foo")), "unknown key type"),
    ],
)
def test_malformed_keys_are_refused_with_the_reason(blob: bytes, reason: str) -> None:
    error = ssh_key_error(line(blob))
    assert error is not None
    assert error.startswith("not an SSH public key")
    assert reason in error


def test_options_with_escaped_quotes_before_the_key_are_skipped() -> None:
    key = line(ed25519_blob(), "ssh-ed25519")
    assert ssh_key_error(f'command="echo \\"two words\\"",no-pty {key}') is None


def test_an_options_field_that_never_ends_finds_no_key() -> None:
    key = line(ed25519_blob(), "ssh-ed25519")
    error = ssh_key_error(f'command="unterminated {key}')
    assert error is not None and "not valid base64" in error


def test_lines_without_a_key_field_are_skipped() -> None:
    assert (
        ssh_key_error("ssh-ed25519\n\n# only a comment\n") == "not an SSH public key (no key found)"
    )
    key = line(ed25519_blob(), "ssh-ed25519")
    assert ssh_key_error(f"ssh-ed25519\n{key}") is None


@pytest.mark.parametrize(
    ("criterion", "fragment"),
    [
        ({"ssh_publickey": {"key": "x"}}, "expected an authorized_keys string"),
        ({"ssh_ca": [5]}, "expected a string, got int"),
        ({"client_certificate": "x"}, "expected a certificate matcher object"),
        ({"client_certificate": {"fingerprint": 5}}, "fingerprint: expected a string or a list"),
        ({"client_certificate": {"spki_hash": ["!!not base64!!"]}}, "spki_hash: '!!not base64!!'"),
        ({"client_certificate": {"fingerprint": [""]}}, "fingerprint: '' is not valid"),
        ({"time_of_day": "9:00"}, "expected an object with timezone"),
        ({"time_of_day": {"timezone": "UTC", "after": 900}}, "got int"),
        ({"time_of_day": {"timezone": "UTC", "before": "9:60"}}, "minute or second out of range"),
        ({"time_of_day": {"timezone": "UTC", "before": "9:00:61"}}, "minute or second"),
        ({"time_of_day": {"timezone": "", "after": "9:00"}}, "timezone is required"),
        ({"time_of_day": {"timezone": "../etc/passwd", "after": "9:00"}}, "unknown time zone"),
        ({"day_of_week": 1}, "expected a string"),
        ({"source_ip": {"cidr": "10.0.0.0/8"}}, "non-empty list"),
    ],
)
def test_values_of_the_wrong_shape_are_errors(criterion: dict[str, Any], fragment: str) -> None:
    errors = validate_ppl([{"allow": {"and": [criterion]}}])
    assert any(fragment in error for error in errors), errors


def test_twelve_hour_times_allow_twelve_and_twenty_four_hour_times_do_not() -> None:
    assert time_of_day_error("12:59 PM") is None
    assert time_of_day_error("23:59:59") is None
    assert time_of_day_error("24:00") == "'24:00': hour out of range"


def test_days_are_case_blind_and_ranges_have_two_ends() -> None:
    assert day_errors("MONDAY-Fri,sun") == []
    assert day_errors("mon-") == ["'mon-' is not a day or a range of days"]


def test_criteria_without_a_value_check_take_any_value() -> None:
    assert value_errors("http_method", {"anything": 1}, lambda _: ["never called"]) == []


# ------------------------------------------------------------------ apps.ppl's own matchers


@pytest.mark.parametrize(
    ("criterion", "fragment"),
    [
        ({"email": 5}, "expected a string or a non-empty string matcher object"),
        ({"email": {}}, "expected a string or a non-empty string matcher object"),
        ({"email": {"starts_with": 5}}, "email.starts_with: expected a string"),
        ({"groups": 5}, "expected a string or a non-empty list matcher object"),
        ({"groups": {"contains": "admins"}}, "unknown list matcher 'contains'"),
        ({"groups": {"has": ["admins"]}}, "groups.has: expected a string"),
        ({"date": "2026-09-01T09:00:00Z"}, "expected an object with 'after' and/or 'before'"),
        ({"date": {"on": "2026-09-01T09:00:00Z"}}, "unknown date matcher 'on'"),
        ({"date": {"after": "2026-02-30T09:00:00Z"}}, "is not an RFC 3339 date-time"),
        ({"date": {"after": "2026-02-30T09:00"}}, "is not an RFC 3339 date-time"),
        ({"email": "a", "user": "b"}, "exactly one key"),
    ],
)
def test_malformed_matchers_are_errors(criterion: dict[str, Any], fragment: str) -> None:
    errors = validate_ppl({"allow": {"and": [criterion]}})
    assert any(fragment in error for error in errors), errors


def test_a_policy_of_the_wrong_shape_is_refused() -> None:
    assert validate_ppl("{not json")[0].startswith("policy is not valid JSON")
    assert validate_ppl(5) == ["policy must be a rule object or a list of rules"]
    assert validate_ppl(["allow"]) == [
        "rule[0]: a rule must be an object with 'allow' and/or 'deny'"
    ]
    assert validate_ppl({"permit": {}}) == [
        "rule[0]: unknown action 'permit' (expected allow or deny)"
    ]
    assert validate_ppl({"allow": []}) == ["rule[0].allow: expected an object with and/or/not/nor"]
    assert validate_ppl({"allow": {"xor": []}}) == ["rule[0].allow: unknown operator 'xor'"]
    assert validate_ppl({"allow": {"and": {}}}) == [
        "rule[0].allow.and: expected a list of criteria"
    ]
    assert criteria_errors({"email": "a"}) == ["criteria must be a list of criterion objects"]


def test_impossible_calendar_dates_are_not_bounds() -> None:
    assert parse_date_bound("2026-02-30T09:00:00Z") is None
    assert parse_date_bound("2026-02-30T09:00") is None
    assert parse_date_bound("2026-02-28T09:00") == dt.datetime(2026, 2, 28, 9, 0, tzinfo=dt.UTC)


def test_normalize_keeps_text_that_is_not_ppl_as_text() -> None:
    assert normalize("allow: [unclosed") == "allow: [unclosed"  # not YAML either
    assert normalize("just words") == "just words"  # YAML, but a scalar
    assert normalize("- allow: {}") == [{"allow": {}}]  # YAML, as the console writes it
    assert normalize(5) == "5"
    assert normalize("  ") == []


@pytest.mark.parametrize(
    "rules",
    [
        [{"allow": {"and": [{"email": 5}]}}],
        [{"allow": {"and": [{"email": {}}]}}],
        [{"allow": {"and": [{"groups": 5}]}}],
        [{"allow": {"and": [{"groups": {"has": "admins", "like": "x"}}]}}],
        [{"allow": {"and": [{"date": "always"}]}}],
        [{"allow": {"and": [{"date": {"after": "2026-01-01T00:00:00Z", "on": "x"}}]}}],
        [{"allow": {"and": [{"date": {"after": "2026-01-01T00:00:00Z", "at": AT.isoformat()}}]}}],
        [{"allow": {"and": [{"email": "a@example.com", "groups": "admins"}]}}],
        [{"allow": {"and": ["email"]}}],
        ["allow", {"deny": {"and": [{"accept": True}]}}],
        [{"allow": {"or": [{"reject": True}]}}],
    ],
)
def test_criteria_that_cannot_be_read_never_let_anyone_in(rules: list[Any]) -> None:
    assert evaluate(rules, "a@example.com", AT, ["admins"]) is False


def test_authenticated_user_needs_an_email() -> None:
    rules = [{"allow": {"and": [{"authenticated_user": True}]}}]
    assert evaluate(rules, "a@example.com", AT) is True
    assert evaluate(rules, "", AT) is False


def test_a_non_rule_in_the_list_is_skipped_and_the_rest_still_counts() -> None:
    rules = ["allow", {"allow": {"and": [{"email": "a@example.com"}]}}]
    assert evaluate(rules, "a@example.com", AT) is True
    assert evaluate(rules, "b@example.com", AT) is False
