"""Small per-process memos for HTML that is a pure function of its inputs.

A page piece whose HTML depends only on a few plain values (a widget's choices, a filter's
links, the sidebar's list of apps) is rendered once per distinct input in a process instead
of through the template engine on every view (bench/README.md, "Pages"). The key must hold
everything the HTML reads; ``frozen`` turns plain inputs (text, numbers, lists, dicts) into
one. A store is emptied when it passes ``MEMO_SIZE`` entries, and nothing in it outlives the
process. An entry is as large as its input allows: a query string or a path is bounded by
gunicorn's request line (``limit_request_line``), and a widget's posted value by
``apps.kit.widgets.LONGEST_VALUE`` (a longer one is not memoized).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["MEMO_SIZE", "frozen", "memo"]

MEMO_SIZE = 256


def memo(store: dict[Any, Any], key: Any, make: Callable[[], Any]) -> Any:
    """``store[key]``, made by ``make()`` the first time."""
    try:
        return store[key]
    except KeyError:
        pass
    value = make()
    if len(store) >= MEMO_SIZE:
        store.clear()
    store[key] = value
    return value


def frozen(value: Any) -> Any:
    """A hashable stand-in for a memo's plain input: equal only for equal text of the same
    types, so safe and plain text, or an int and its digits, never share an entry. Lazy text
    is read in the active language. Anything else counts by its type's name and its text, so
    only inputs whose text is all the HTML reads of them belong in a key."""
    if isinstance(value, dict):
        return tuple(sorted((str(k), frozen(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(frozen(v) for v in value)
    return (type(value).__name__, str(value))
