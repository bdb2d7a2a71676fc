"""Memoized widgets (``apps.kit.widgets``): Django's HTML for every input, and a store that a
person's input cannot grow."""

from __future__ import annotations

from django import forms

from apps.kit import widgets

CHOICES = [("", "Pick one"), ("a", "A <one>"), ("b", "B & two")]


def test_a_memoized_select_renders_what_djangos_select_renders() -> None:
    for value in ("", "a", "b", "c", None, ["a"], "<script>"):
        for attrs in ({}, {"id": "id_x", "required": True}):
            django = forms.Select(choices=CHOICES).render("x", value, dict(attrs))
            ours = widgets.MemoizedSelect(choices=CHOICES)
            assert ours.render("x", value, dict(attrs)) == django, (value, attrs)
            assert ours.render("x", value, dict(attrs)) == django  # from the store


def test_a_memoized_hidden_input_keeps_each_value() -> None:
    hidden = widgets.MemoizedHiddenInput({"class": "c"})
    assert hidden.render("n", "1") == '<input type="hidden" name="n" value="1" class="c">'
    assert hidden.render("n", '"2"') == (
        '<input type="hidden" name="n" value="&quot;2&quot;" class="c">'
    )


def test_a_long_posted_value_is_rendered_without_the_store() -> None:
    widgets._WIDGETS.clear()
    select = widgets.MemoizedSelect(choices=CHOICES)
    long = "x" * (widgets.LONGEST_VALUE + 1)

    html = select.render("x", long)

    assert html == forms.Select(choices=CHOICES).render("x", long)
    assert widgets._WIDGETS == {}
    select.render("x", "x" * widgets.LONGEST_VALUE)
    assert len(widgets._WIDGETS) == 1
