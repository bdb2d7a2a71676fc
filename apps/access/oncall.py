"""Who is on call now? A port the domain asks; adapter apps answer (``apps.oncall``).

An auto-approval rule may name an on-call schedule instead of a group::

    {"oncall": {"provider": "pagerduty", "schedule": "P123ABC"}, "max_minutes": 240}

The domain does not speak PagerDuty or Opsgenie: an adapter app registers a ``Source`` per
provider when it loads (``register``), and the domain asks ``lookup``. A source answers
with the entries on call for a schedule now, or raises ``Unreachable`` (timeouts, refused
tokens, rate limits, an unknown schedule): then the rule does not match, the request goes
to the approvers, and it says why. Nothing here fails open.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from apps.accounts.emails import normalize_email

# The providers a rule may name; each needs an adapter to be registered to ever match.
PROVIDERS = {"pagerduty": "PagerDuty", "opsgenie": "Opsgenie"}


@dataclass(frozen=True)
class OnCallEntry:
    """One person on call for a schedule now, as the provider said it."""

    provider: str
    schedule: str
    email: str
    # What the provider said about the entry (user id and name, escalation policy and
    # level, start and end), kept for the audit trail.
    detail: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "schedule": self.schedule,
            "email": self.email,
            **dict(self.detail),
        }


class Unreachable(Exception):
    """The provider could not say who is on call; ``str(exc)`` says why (no secret)."""


class Source(Protocol):
    def on_call(self, schedule: str, *, now: datetime) -> list[OnCallEntry]: ...


_SOURCES: dict[str, Source] = {}


def register(provider: str, source: Source) -> None:
    """An adapter answers for ``provider`` (registering again replaces it)."""
    if provider not in PROVIDERS:
        raise ValueError(f"unknown on-call provider {provider!r}")
    _SOURCES[provider] = source


def lookup(provider: str, schedule: str, email: str, *, now: datetime) -> OnCallEntry | None:
    """The entry that puts ``email`` on call for ``schedule`` now, or None.

    Emails are compared normalised (one person under any alias). Raises ``Unreachable``
    when the provider could not be asked."""
    source = _SOURCES.get(provider)
    if source is None:
        raise Unreachable(f"no {PROVIDERS.get(provider, provider)} connection is configured")
    key = normalize_email(email or "")
    if not key:
        return None
    for entry in source.on_call(schedule, now=now):
        if normalize_email(entry.email) == key:
            return entry
    return None


def rule_schedule(rule: Mapping[str, Any]) -> tuple[str, str] | None:
    """(provider, schedule) of an on-call rule, None for a group rule."""
    oncall = rule.get("oncall")
    if isinstance(oncall, Mapping):
        return str(oncall.get("provider")), str(oncall.get("schedule"))
    return None


def who(rule: Mapping[str, Any]) -> str:
    """Whom a rule approves, in words: "members of oncall", "whoever is on call in PagerDuty
    schedule P123ABC" (the one home of this wording: mail, Slack, reports)."""
    where = rule_schedule(rule)
    if where is None:
        return f"members of {rule.get('group')}"
    return f"whoever is on call in {PROVIDERS.get(where[0], where[0])} schedule {where[1]}"


def rule_ok(rule: object) -> bool:
    """Whether ``rule`` is a valid auto-approval rule: a group or an on-call schedule, and a
    positive ``max_minutes``."""
    if not isinstance(rule, dict) or set(rule) - {"group", "oncall", "max_minutes"}:
        return False
    minutes = rule.get("max_minutes")
    if not isinstance(minutes, int) or isinstance(minutes, bool) or minutes <= 0:
        return False
    if "group" in rule:
        return "oncall" not in rule and isinstance(rule["group"], str) and bool(rule["group"])
    oncall = rule.get("oncall")
    return (
        isinstance(oncall, dict)
        and set(oncall) == {"provider", "schedule"}
        and oncall["provider"] in PROVIDERS
        and isinstance(oncall["schedule"], str)
        and 0 < len(oncall["schedule"]) <= 100
        and oncall["schedule"].isprintable()
    )
