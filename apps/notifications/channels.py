"""Senders that adapter apps plug into the outbox, per channel.

The outbox (``delivery.deliver``) sends email and incoming-webhook rows itself. A channel
whose protocol lives in an app above this one (the Slack app's Web API, ``apps.slack``)
registers its sender here when that app loads; notifications never imports it. A sender
gets the claimed row and raises ``delivery.DeliveryError`` (permanent or not, with Slack's
Retry-After) when it could not deliver; returning means delivered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .models import Notification

Sender = Callable[["Notification"], None]

_SENDERS: dict[str, Sender] = {}


def register(channel: str, sender: Sender) -> None:
    """Make ``sender`` deliver the rows of ``channel`` (registering it again replaces it)."""
    _SENDERS[channel] = sender


def sender_for(channel: str) -> Sender | None:
    return _SENDERS.get(channel)
