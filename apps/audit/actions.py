"""The registry of audit action names: each app registers the actions it writes.

The audit app keeps the chain, not the vocabulary. An app declares its actions as a
``TextChoices`` (code, label) and registers them when it is loaded, e.g. in its
``AppConfig.ready()``::

    from apps.audit import actions
    actions.register(MyAction)

``record()`` refuses a code nobody registered, so a typo cannot slip into the trail. A new
action needs no migration: the stored column holds the code, and the admin's filter and
the export form read their choices from here. Codes are never renamed or removed once
written: older trails must keep verifying and reading well.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["UnknownAction", "choices", "is_registered", "label", "register"]

_LABELS: dict[str, str] = {}


class UnknownAction(ValueError):
    """An audit entry names an action no app registered."""


def register(actions: Iterable[Any]) -> None:
    """Register every member of a ``TextChoices`` (or (code, label) pairs).

    Registering the same code with the same label again is harmless; a second, different
    label for a code is a programming error.
    """
    for item in actions:
        code, text = (str(item.value), str(item.label)) if hasattr(item, "label") else item
        known = _LABELS.get(code)
        if known is not None and known != text:
            raise ValueError(f"audit action {code!r} is registered twice ({known!r}, {text!r})")
        _LABELS[code] = text


def is_registered(code: str) -> bool:
    return code in _LABELS


def label(code: str) -> str:
    """The readable label of ``code``; the code itself when nobody registered it (an
    entry written by an older release reads as its code rather than failing)."""
    return _LABELS.get(code, code)


def choices() -> list[tuple[str, str]]:
    """Every registered action as (code, label), ordered by code."""
    return sorted(_LABELS.items())
