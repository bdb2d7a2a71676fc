"""Each PPL criterion's value, read as strictly as Pomerium reads it.

Pure functions, no I/O, below ``apps.ppl`` (which checks a policy's structure and calls
``value_errors`` for every criterion). Read from Pomerium's own code, ``pkg/policy/criteria``
in pomerium/pomerium (Core v0.33), and, for the criteria only Zero and Enterprise have
(``date``, ``day_of_week``, ``time_of_day``, ``record``), from Pomerium's PPL reference:

* ``source_ip``: a string or a non-empty list of strings, each an IP address or a CIDR as
  Go's ``net.ParseCIDR``/``net.ParseIP`` read them (no leading zeros in IPv4, no IPv6 zone,
  a decimal prefix length no longer than the address);
* ``ssh_publickey``, ``ssh_ca``: a string or a list of strings, each holding a public key in
  ``authorized_keys`` form that Go's ``ssh.ParseAuthorizedKey`` parses (the key blob is
  decoded and checked: its fields, the curve point, no trailing bytes);
* ``ssh_username_matches_claim``: a string (the claim name);
* ``device``: an object with only ``approved``, ``is`` (string) and ``type`` (string);
* ``client_certificate``: an object with only ``fingerprint`` (SHA-256, 64 lowercase hex
  digits or 32 colon-separated uppercase pairs), ``spki_hash`` (base64 of 32 bytes; both a
  string or a list of strings) and ``san_email``/``san_dns``/``san_uri`` (string matchers);
* ``day_of_week``: ``*``, or a comma list of days and ``day-day`` ranges, each an English day
  name or its three-letter abbreviation;
* ``time_of_day``: an object with ``timezone`` (required, an IANA zone name) and ``after``
  and/or ``before``, each in one of the layouts of Pomerium's reference (``3:04 PM``,
  ``3:04PM``, ``3 PM``, ``3PM``, ``15:04:05.999999999``, ``15:04:05``, ``15:04``) as Go's
  ``time.Parse`` reads them: ``AM``/``PM`` in capitals, minutes and seconds as two digits.

String matchers, list matchers and ``date`` are checked in ``apps.ppl`` itself.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["day_errors", "ssh_key_error", "time_of_day_error", "value_errors"]

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_PREFIX = re.compile(r"^[0-9]+$")
_SHORT_FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")
_LONG_FINGERPRINT = re.compile(r"^[0-9A-F]{2}(:[0-9A-F]{2}){31}$")
_DEVICE_KEYS = frozenset({"approved", "is", "type"})
_CERTIFICATE_KEYS = frozenset({"fingerprint", "spki_hash", "san_email", "san_dns", "san_uri"})
_TOD_KEYS = frozenset({"timezone", "after", "before"})
CERT_SUFFIX = b"-cert-v01@openssh.com"


def value_errors(
    name: str, value: object, string_matcher: Callable[[object], list[str]]
) -> list[str]:
    """Why ``value`` is not a value Pomerium accepts for criterion ``name`` (its part before
    any ``/``); [] when it is, or when the criterion takes any value. ``string_matcher``
    checks a string matcher (``apps.ppl``'s own rule, for ``san_*``)."""
    check = _CHECKS.get(name)
    return check(value, string_matcher) if check is not None else []


# ------------------------------------------------------------------------------ source_ip


def _ip_error(text: object) -> str | None:
    if not isinstance(text, str):
        return f"expected an IP address or CIDR string, got {type(text).__name__}"
    address, slash, prefix = text.partition("/")
    if "%" in address:
        return f"{text!r}: an IPv6 zone is not allowed"
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return f"{text!r} is not an IP address or CIDR range"
    if not slash:
        return None
    if not _PREFIX.match(prefix) or int(prefix) > parsed.max_prefixlen:
        return f"{text!r}: the prefix length must be 0-{parsed.max_prefixlen}"
    return None


def _source_ip(value: object, _: Callable[[object], list[str]]) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        return ["expected an IP/CIDR string or a non-empty list of them"]
    return [error for item in items if (error := _ip_error(item)) is not None]


# --------------------------------------------------------------------------- SSH public keys


class _Blob:
    """A reader of the SSH wire format (RFC 4251): strings and mpints, in order."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def string(self) -> bytes:
        if len(self.data) < 4:
            raise ValueError("truncated key")
        size = int.from_bytes(self.data[:4], "big")
        if len(self.data) < 4 + size:
            raise ValueError("truncated key")
        value, self.data = self.data[4 : 4 + size], self.data[4 + size :]
        return value

    def mpint(self) -> int:
        return int.from_bytes(self.string(), "big", signed=True)


def _ec_point(curve_name: bytes, point: bytes) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    curves: dict[bytes, ec.EllipticCurve] = {
        b"nistp256": ec.SECP256R1(),
        b"nistp384": ec.SECP384R1(),
        b"nistp521": ec.SECP521R1(),
    }
    ec.EllipticCurvePublicKey.from_encoded_point(curves[curve_name], point)  # off the curve


def _parse_key(blob: _Blob, algorithm: bytes) -> None:
    """Check one public key's fields after its algorithm name, as x/crypto/ssh does."""
    if algorithm == b"ssh-rsa":
        exponent, modulus = blob.mpint(), blob.mpint()
        if exponent.bit_length() > 24:
            raise ValueError("RSA exponent too large")
        if exponent < 3 or exponent % 2 == 0:
            raise ValueError("incorrect RSA exponent")
        if modulus <= 0:
            raise ValueError("invalid RSA modulus")
    elif algorithm == b"ssh-dss":
        for _ in range(4):  # p, q, g, y
            blob.mpint()
    elif algorithm in (
        b"ecdsa-sha2-nistp256",
        b"ecdsa-sha2-nistp384",
        b"ecdsa-sha2-nistp521",
        b"sk-ecdsa-sha2-nistp256@openssh.com",
    ):
        expected = re.search(rb"nistp[0-9]+", algorithm)
        assert expected is not None
        curve = blob.string()
        if curve != expected.group(0):
            raise ValueError("curve name does not match the key type")
        _ec_point(curve, blob.string())
        if algorithm.startswith(b"sk-"):
            blob.string()  # application
    elif algorithm in (b"ssh-ed25519", b"sk-ssh-ed25519@openssh.com"):
        if len(blob.string()) != 32:
            raise ValueError("an Ed25519 key is 32 bytes")
        if algorithm.startswith(b"sk-"):
            blob.string()  # application
    elif algorithm.endswith(CERT_SUFFIX):
        blob.string()  # nonce
        base = algorithm.removesuffix(CERT_SUFFIX)
        _parse_key(blob, base + b"@openssh.com" if base.startswith(b"sk-") else base)
        _certificate_tail(blob)
    else:
        raise ValueError(f"unknown key type {algorithm.decode(errors='replace')!r}")


def _certificate_tail(blob: _Blob) -> None:
    """serial, type, key id, principals, validity, options, extensions, reserved, the
    signature key (itself parsed) and the signature."""
    if len(blob.data) < 12:
        raise ValueError("truncated certificate")
    blob.data = blob.data[12:]  # uint64 serial, uint32 type
    blob.string()  # key id
    blob.string()  # valid principals
    if len(blob.data) < 16:
        raise ValueError("truncated certificate")
    blob.data = blob.data[16:]  # valid after, valid before
    blob.string()  # critical options
    blob.string()  # extensions
    blob.string()  # reserved
    signer = _Blob(blob.string())
    _parse_key(signer, signer.string())
    if signer.data:
        raise ValueError("trailing data in the certificate's signature key")
    blob.string()  # signature


def _key_blob_error(encoded: bytes) -> str | None:
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return "the key is not valid base64"
    blob = _Blob(data)
    try:
        _parse_key(blob, blob.string())
    except (ValueError, KeyError) as exc:
        return str(exc)
    if blob.data:
        return "trailing data after the key"
    return None


def _skip_options(line: bytes) -> bytes | None:
    """What follows an authorized_keys options field (quotes may hold spaces)."""
    quoted = False
    index = 0
    while index < len(line):
        char = line[index : index + 1]
        if not quoted and char in (b" ", b"\t"):
            return line[index:].strip()
        if char == b"\\" and line[index + 1 : index + 2] == b'"':
            index += 2
            continue
        if char == b'"':
            quoted = not quoted
        index += 1
    return None


def _key_after_type(rest: bytes) -> str | None:
    """``parseAuthorizedKey``: the base64 field after the key type (which is not checked)."""
    field = rest.strip().split(None, 1)
    return _key_blob_error(field[0]) if field else "no key"


def ssh_key_error(text: object) -> str | None:
    """Why ``text`` holds no public key Go's ``ssh.ParseAuthorizedKey`` would find; None if
    it does. Like Go: the first line that parses counts, blank lines and ``#`` comments are
    skipped, and an options field before the key type is allowed."""
    if not isinstance(text, str):
        return f"expected a string, got {type(text).__name__}"
    last = "no key found"
    for raw in text.encode().split(b"\n"):
        line = raw.split(b"\r", 1)[0].strip()
        if not line or line.startswith(b"#"):
            continue
        parts = line.split(None, 1)
        if len(parts) < 2:
            continue
        error = _key_after_type(parts[1])
        if error is None:
            return None
        after = _skip_options(line)
        if after is not None:
            typed = after.split(None, 1)
            if len(typed) == 2 and _key_after_type(typed[1]) is None:
                return None
        last = error
    return f"not an SSH public key ({last})"


def _ssh_keys(value: object, _: Callable[[object], list[str]]) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        return ["expected an authorized_keys string or a list of them"]
    return [error for item in items if (error := ssh_key_error(item)) is not None]


# ------------------------------------------------------------------ devices, certificates


def _device(value: object, _: Callable[[object], list[str]]) -> list[str]:
    if not isinstance(value, dict):
        return ["expected an object with approved, is and/or type"]
    errors = [f"unexpected field {key!r}" for key in value if key not in _DEVICE_KEYS]
    errors += [
        f"{key}: expected a string"
        for key in ("is", "type")
        if key in value and not isinstance(value[key], str)
    ]
    return errors


def _hashes(value: object, check: Callable[[str], bool], what: str) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        return [f"{what}: expected a string or a list of strings"]
    return [f"{what}: {item!r} is not valid" for item in items if not _ok(item, check)]


def _ok(item: object, check: Callable[[str], bool]) -> bool:
    return isinstance(item, str) and bool(item) and check(item)


def _spki(item: str) -> bool:
    try:
        return len(base64.b64decode(item, validate=True)) == 32
    except (binascii.Error, ValueError):
        return False


def _certificate(value: object, string_matcher: Callable[[object], list[str]]) -> list[str]:
    if not isinstance(value, dict):
        return ["expected a certificate matcher object"]
    errors = []
    for key, operand in value.items():
        if key not in _CERTIFICATE_KEYS:
            errors.append(f"unsupported certificate matcher condition {key!r}")
        elif key == "fingerprint":
            errors += _hashes(
                operand,
                lambda f: bool(_SHORT_FINGERPRINT.match(f) or _LONG_FINGERPRINT.match(f)),
                "fingerprint",
            )
        elif key == "spki_hash":
            errors += _hashes(operand, _spki, "spki_hash")
        else:
            errors += [f"{key}: {error}" for error in string_matcher(operand)]
    return errors


def _claim_name(value: object, _: Callable[[object], list[str]]) -> list[str]:
    return [] if isinstance(value, str) else ["expected the claim's name, a string"]


# ------------------------------------------------------------------- days and times


def _day(name: str) -> bool:
    return name.lower() in _DAYS or name.lower() in _FULL_DAYS


def day_errors(value: object) -> list[str]:
    """``*``, or comma-separated days and ``day-day`` ranges (English names or three-letter
    abbreviations, any case); no spaces."""
    if not isinstance(value, str) or not value:
        return ["expected a string such as mon-fri or mon,wed,fri"]
    if value == "*":
        return []
    errors = []
    for item in value.split(","):
        ends = item.split("-")
        if len(ends) > 2 or not all(_day(end) for end in ends):
            errors.append(f"{item!r} is not a day or a range of days")
    return errors


_H24 = r"(?P<h>[0-9]{1,2}):(?P<m>[0-9]{2})"
_TIME_LAYOUTS = (
    re.compile(r"^(?P<h>[0-9]{1,2}):(?P<m>[0-9]{2}) ?(?P<p>AM|PM)$"),  # 3:04 PM, 3:04PM
    re.compile(r"^(?P<h>[0-9]{1,2}) ?(?P<p>AM|PM)$"),  # 3 PM, 3PM
    re.compile(rf"^{_H24}:(?P<s>[0-9]{{2}})([.,][0-9]+)?$"),  # 15:04:05(.999999999)
    re.compile(rf"^{_H24}$"),  # 15:04
)


def time_of_day_error(text: object) -> str | None:
    """Why ``text`` is not a time of day in one of Pomerium's layouts; None if it is."""
    if not isinstance(text, str):
        return f"expected a time such as 09:00 or 5:30PM, got {type(text).__name__}"
    for layout in _TIME_LAYOUTS:
        match = layout.match(text)
        if not match:
            continue
        hour, parts = int(match["h"]), match.groupdict()
        twelve = parts.get("p") is not None
        if hour > (12 if twelve else 23):
            return f"{text!r}: hour out of range"
        if int(parts.get("m") or 0) > 59 or int(parts.get("s") or 0) > 59:
            return f"{text!r}: minute or second out of range"
        return None
    return f"{text!r} is not a time such as 15:04, 15:04:05, 3:04PM or 3 PM"


def _time_of_day(value: object, _: Callable[[object], list[str]]) -> list[str]:
    if not isinstance(value, dict):
        return ["expected an object with timezone and after and/or before"]
    errors = [f"unknown time_of_day key {key!r}" for key in value if key not in _TOD_KEYS]
    zone = value.get("timezone")
    if not isinstance(zone, str) or not zone:
        errors.append("timezone is required (an IANA zone name such as Europe/Berlin)")
    else:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            errors.append(f"unknown time zone {zone!r}")
    if "after" not in value and "before" not in value:
        errors.append("after and/or before is required")
    errors += [
        error
        for key in ("after", "before")
        if key in value and (error := time_of_day_error(value[key])) is not None
    ]
    return errors


_CHECKS: dict[str, Callable[[object, Callable[[object], list[str]]], list[str]]] = {
    "client_certificate": _certificate,
    "day_of_week": lambda value, _: day_errors(value),
    "device": _device,
    "source_ip": _source_ip,
    "ssh_ca": _ssh_keys,
    "ssh_publickey": _ssh_keys,
    "ssh_username_matches_claim": _claim_name,
    "time_of_day": _time_of_day,
}
