"""One person, one email: the portal's single rule for comparing and validating addresses.

Pomerium matches a PPL ``email`` criterion by exact, case-sensitive equality with the
assertion's ``email`` claim, so the portal stores and writes an address exactly as the
assertion carried it. Inside the portal, though, ``AppA@Example.Test`` and
``appa@example.test`` are the same person: every comparison (identity, separation of
duties, quorum, role lists, uniqueness) goes through ``normalize_email`` and nothing else.

``validate_email`` refuses what no identity provider should send and what would make the
address ambiguous or dangerous downstream: anything that is not a plain ``local@domain``
(quotes, commas, spaces, angle brackets), control and format characters (Unicode
categories Cc and Cf, which include DEL and zero-width characters), and over-long values.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

MAX_EMAIL_LENGTH = 254  # RFC 5321 path limit minus the angle brackets
MAX_LOCAL_LENGTH = 64

# RFC 5322 "atext", without the quoted-string form; non-ASCII letters (RFC 6531) are
# checked separately below.
_ASCII_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+$")
_ASCII_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$")
_FORBIDDEN_CATEGORIES = ("Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp")


class InvalidEmail(ValueError):
    """The address is not acceptable; the message says why, for people."""


def same_person(a: Any, b: Any) -> bool:
    """One person, one identity: the same account, or the same normalised email."""
    if a.pk == b.pk:
        return True
    key_a, key_b = normalize_email(a.email or ""), normalize_email(b.email or "")
    return bool(key_a) and key_a == key_b


def is_nfkc_normal(value: str) -> bool:
    """Whether an address is written without compatibility characters (ligatures, full-width
    letters...): NFKC leaves it as it is. Of two addresses with one key, only one that is
    not NFKC-normal is a look-alike; two NFKC-normal ones differ in case only."""
    return unicodedata.is_normalized("NFKC", value)


def normalize_email(value: str) -> str:
    """The comparison key of an address: Unicode NFKC, case-folded, no surrounding space."""
    folded = unicodedata.normalize("NFKC", value).casefold()
    # Case folding can undo NFKC for a few characters; normalise once more.
    return unicodedata.normalize("NFKC", folded).strip()


def _word_ok(word: str, ascii_pattern: re.Pattern[str]) -> bool:
    if not word:
        return False
    if word.isascii():  # the common case, checked without a per-character loop
        return ascii_pattern.match(word) is not None
    ascii_only = "".join(c for c in word if ord(c) < 128)
    if ascii_only and not ascii_pattern.match(ascii_only):
        return False
    # Beyond ASCII only letters, marks and digits (internationalised addresses).
    return all(ord(c) < 128 or unicodedata.category(c)[0] in "LMN" for c in word)


def validate_email(value: object) -> str:
    """Return ``value`` unchanged if it is an acceptable address, else raise ``InvalidEmail``."""
    if not isinstance(value, str) or not value:
        raise InvalidEmail("The identity assertion carries no email address.")
    if len(value) > MAX_EMAIL_LENGTH:
        raise InvalidEmail(f"The email address is longer than {MAX_EMAIL_LENGTH} characters.")
    # In ASCII the forbidden categories are the controls (Cc: not printable) and the space
    # (Zs); the per-character category lookup is only needed beyond ASCII.
    if (
        (not value.isprintable() or " " in value)
        if value.isascii()
        else any(unicodedata.category(c) in _FORBIDDEN_CATEGORIES for c in value)
    ):
        raise InvalidEmail("The email address contains spaces, control or invisible characters.")
    local, at, domain = value.rpartition("@")
    if not at or not local or not domain or "@" in local:
        raise InvalidEmail("The email address is not of the form name@domain.")
    if len(local) > MAX_LOCAL_LENGTH:
        raise InvalidEmail(f"The part before @ is longer than {MAX_LOCAL_LENGTH} characters.")
    if not all(_word_ok(word, _ASCII_LOCAL) for word in local.split(".")):
        raise InvalidEmail("The part before @ has characters an email address cannot have.")
    labels = domain.split(".")
    if not all(_word_ok(label, _ASCII_LABEL) and len(label) <= 63 for label in labels):
        raise InvalidEmail("The domain of the email address is not valid.")
    return value
