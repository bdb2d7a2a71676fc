"""Form widgets whose HTML is rendered once per distinct input in a process.

Django renders a widget through the form templates on every view: a select of a few
actions costs 0.5-1 ms of a changelist, and the preferences page's time zone select (about
600 options, one template render each) cost most of its 20 ms
(bench/results/2026-12-07-web-floor.md).
A memoized widget keys its HTML on everything the widget templates read (its class, name,
value, attributes, choices and renderer), so the same input gives the same HTML and another
input never gets another's entry. The stores are ``apps.kit.memo``'s: per process, bounded.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.forms.renderers import BaseRenderer
from django.utils.safestring import SafeString

from .memo import frozen, memo

__all__ = ["LONGEST_VALUE", "MemoizedHiddenInput", "MemoizedSelect", "MemoizedWidget"]

_WIDGETS: dict[Any, str] = {}
# The longest value text a key may hold. A bound form's value is whatever was posted (up to
# the request's size), so a longer one is rendered without the memo: the store holds at most
# MEMO_SIZE entries, and none of them can be made large by a person's input.
LONGEST_VALUE = 200


class MemoizedWidget:
    """A widget mixin (before the widget class): its HTML rendered once per distinct input."""

    def render(
        self,
        name: str,
        value: Any,
        attrs: dict[str, Any] | None = None,
        renderer: BaseRenderer | None = None,
    ) -> SafeString:
        render = super().render  # type: ignore[misc]
        if len(str(value)) > LONGEST_VALUE:
            return SafeString(render(name, value, attrs, renderer))
        key = (
            type(self),
            name,
            frozen(value),
            frozen(attrs or {}),
            frozen(self.attrs),  # type: ignore[attr-defined]
            frozen(list(getattr(self, "choices", ()))),
            id(renderer),
        )
        return SafeString(memo(_WIDGETS, key, lambda: render(name, value, attrs, renderer)))


class MemoizedSelect(MemoizedWidget, forms.Select):
    pass


class MemoizedHiddenInput(MemoizedWidget, forms.HiddenInput):
    pass
