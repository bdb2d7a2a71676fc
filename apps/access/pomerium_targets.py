"""Parse the Pomerium targets: where each resource's policy lives, and how to reach it.

Pure Python (no Django), so the settings module refuses a bad value at start-up with one
line and the system checks re-validate the effective settings with the same rules.

A target is a name (what ``Resource.cluster`` stores), a flavour and an address:

* ``zero``: a Pomerium Zero cluster through Zero's v0 REST API; the address is the
  cluster id (``CLUSTER_ID`` and ``ZERO_CLUSTERS`` make these, as they always did);
* ``core``: open-source Pomerium Core through its ConfigService; the address is the
  control plane's URL (``POMERIUM_CORE_URL`` makes the target ``default``), and the shared
  secret (``POMERIUM_SHARED_SECRET``, base64 as in Pomerium's own config) signs each call;
* ``api``: Pomerium Zero or Enterprise through ConfigService; the address is the API's URL,
  and ``POMERIUM_API_TOKEN`` authenticates.

``POMERIUM_TARGETS`` adds any of them as comma-separated ``name=flavour:address``, e.g.
``edge=core:http://pomerium:5443,prod=zero:3f2a9c,corp=api:https://console.example.com``.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from urllib.parse import urlsplit

from apps.access import zero_clusters

__all__ = [
    "API",
    "CORE",
    "FLAVOURS",
    "ZERO",
    "Target",
    "TargetConfigError",
    "decode_secret",
    "parse",
    "target_set",
]

ZERO = "zero"
CORE = "core"
API = "api"
FLAVOURS = (ZERO, CORE, API)


class TargetConfigError(ValueError):
    """The target configuration is invalid; the message is one readable sentence."""


@dataclass(frozen=True)
class Target:
    name: str
    flavour: str
    address: str  # zero: the cluster id; core/api: the ConfigService base URL


def _url(name: str, address: str) -> str:
    parts = urlsplit(address)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise TargetConfigError(
            f"target {name!r} needs an http:// or https:// address, not {address!r}"
        )
    return address.rstrip("/")


def parse(text: str) -> dict[str, Target]:
    """``POMERIUM_TARGETS``: ``name=flavour:address`` entries, in order."""
    found: dict[str, Target] = {}
    for entry, name, rest in zero_clusters.named_entries(
        text, "POMERIUM_TARGETS", "name=flavour:address", TargetConfigError
    ):
        flavour, colon, address = (part.strip() for part in rest.partition(":"))
        if not colon:
            raise TargetConfigError(f"POMERIUM_TARGETS entry {entry!r} is not name=flavour:address")
        if flavour not in FLAVOURS:
            raise TargetConfigError(
                f"POMERIUM_TARGETS entry {name!r} has flavour {flavour!r}; "
                f"use one of {', '.join(FLAVOURS)}"
            )
        if not address:
            raise TargetConfigError(f"POMERIUM_TARGETS entry {name!r} has an empty address")
        if flavour == ZERO and not zero_clusters.ID_RE.match(address):
            raise TargetConfigError(f"POMERIUM_TARGETS entry {name!r} has an invalid cluster id")
        if flavour != ZERO:
            address = _url(name, address)
        if name in found:
            raise TargetConfigError(f"POMERIUM_TARGETS names target {name!r} twice")
        found[name] = Target(name, flavour, address)
    return found


def decode_secret(value: str) -> bytes:
    """The shared secret's bytes (standard or URL-safe base64, as Pomerium accepts it)."""
    text = value.strip()
    if not text:
        raise TargetConfigError("POMERIUM_SHARED_SECRET is empty")
    padded = text + "=" * (-len(text) % 4)
    standard = padded.replace("-", "+").replace("_", "/")  # URL-safe base64 too
    try:
        raw = base64.b64decode(standard.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raw = b""
    if raw:
        return raw
    # Never echo the value: it is a secret.
    raise TargetConfigError(
        "POMERIUM_SHARED_SECRET is not valid base64 (use the shared_secret of Pomerium's "
        "config exactly as it is written there)"
    )


def target_set(
    *,
    cluster_id: str,
    zero: dict[str, str],
    default_name: str,
    core_url: str = "",
    targets: dict[str, Target] | None = None,
    shared_secret: str = "",
    api_token: str = "",
) -> dict[str, Target]:
    """Every configured target, name -> Target, ``default`` first.

    ``default`` is ``CLUSTER_ID``'s Zero cluster, else ``POMERIUM_CORE_URL``'s Core; with
    neither and nothing else configured it is a Zero cluster without an id (a portal with
    the sync switched off still has the one default target its resources name). Then
    ``ZERO_CLUSTERS``, then ``POMERIUM_TARGETS``. Raises ``TargetConfigError`` for a name
    used twice, a Zero cluster id used twice, a Core target without a valid shared secret,
    an api target without ``POMERIUM_API_TOKEN``, or a default name not configured.
    """
    extra = dict(targets or {})
    if cluster_id and core_url:
        raise TargetConfigError(
            "CLUSTER_ID and POMERIUM_CORE_URL both name the target 'default'; "
            "keep one and name the other in POMERIUM_TARGETS"
        )
    found: dict[str, Target] = {}
    default = zero_clusters.DEFAULT_NAME
    if cluster_id:
        found[default] = Target(default, ZERO, cluster_id)
    elif core_url:
        found[default] = Target(default, CORE, _url(default, core_url))
    elif not zero and not extra:
        found[default] = Target(default, ZERO, "")
    for name, value in zero.items():
        if name in found:
            raise TargetConfigError(
                f"ZERO_CLUSTERS names {name!r}, which is already a target; remove one of the two"
            )
        found[name] = Target(name, ZERO, value)
    for name, target in extra.items():
        if name in found:
            raise TargetConfigError(
                f"POMERIUM_TARGETS names {name!r}, which is already a target "
                "(CLUSTER_ID, POMERIUM_CORE_URL or ZERO_CLUSTERS); remove one of the two"
            )
        found[name] = target
    seen: dict[str, str] = {}
    for target in found.values():
        if target.flavour != ZERO or not target.address:
            continue
        if target.address in seen:
            raise TargetConfigError(
                f"clusters {seen[target.address]!r} and {target.name!r} have the same cluster "
                "id; give each cluster one name"
            )
        seen[target.address] = target.name
    flavours = {t.flavour for t in found.values()}
    if CORE in flavours:
        if not shared_secret:
            cores = ", ".join(t.name for t in found.values() if t.flavour == CORE)
            raise TargetConfigError(
                f"Core target(s) {cores} need POMERIUM_SHARED_SECRET "
                "(or POMERIUM_SHARED_SECRET_FILE)"
            )
        decode_secret(shared_secret)
    if API in flavours and not api_token:
        apis = ", ".join(t.name for t in found.values() if t.flavour == API)
        raise TargetConfigError(
            f"api target(s) {apis} need POMERIUM_API_TOKEN (or POMERIUM_API_TOKEN_FILE)"
        )
    if default_name not in found:
        raise TargetConfigError(
            f"ZERO_DEFAULT_CLUSTER {default_name!r} is not a configured target ({', '.join(found)})"
        )
    return found
