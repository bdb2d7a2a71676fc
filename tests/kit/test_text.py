"""The hidden-character rule (``apps.kit.text``): which characters, how they are refused,
how they are shown, and what the page filter costs a page without any."""

from __future__ import annotations

import sys
import unicodedata

import pytest
from django.core.exceptions import ValidationError

from apps.kit.text import HIDDEN, hidden_in, hidden_problem, refuse_hidden, reveal, reveal_bytes
from jitcli.core import _hidden as cli_hidden
from tests.support.hidden_text import CLASS_IDS, CLASSES

FILLERS = {"\u115f", "\u1160", "\u3164", "\uffa0"}


def expected(char: str) -> bool:
    if char in "\t\n\r":
        return False
    return unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp") or char in FILLERS


def test_the_set_is_exactly_the_named_categories() -> None:
    # The ranges are written out for speed; they must be what the docstring says in this
    # Python's Unicode database (plus code points a newer Unicode assigns to them, which
    # this one leaves unassigned), and the CLI's own copy (it imports no app) must agree.
    missing, extra, cli = [], [], []
    for code in range(sys.maxunicode + 1):
        if 0xD800 <= code <= 0xDFFF:
            continue
        char = chr(code)
        want, found = expected(char), bool(HIDDEN.fullmatch(char))
        if want and not found:
            missing.append(f"U+{code:04X}")
        if found and not want and unicodedata.category(char) != "Cn":
            extra.append(f"U+{code:04X}")
        if cli_hidden(char) != want:
            cli.append(f"U+{code:04X}")
    assert (missing, extra, cli) == ([], [], [])


@pytest.mark.parametrize("name", CLASS_IDS)
def test_each_character_is_refused_with_its_name_and_place(name: str) -> None:
    for char in CLASSES[name]:
        problem = hidden_problem(f"abc{char}def")
        assert problem is not None, f"U+{ord(char):04X}"
        assert f"U+{ord(char):04X}" in problem and "at position 4" in problem
        with pytest.raises(ValidationError) as caught:
            refuse_hidden(f"ok {char}")
        assert caught.value.code == "hidden_character"
        assert hidden_in({"rules": [{"group": f"sre{char}"}]}) is not None
        assert hidden_in({f"k{char}": 1}) is not None


@pytest.mark.parametrize("name", CLASS_IDS)
def test_each_character_is_revealed(name: str) -> None:
    chars = CLASSES[name]
    text = "a" + "b".join(chars) + "c"
    shown = reveal(text)
    assert not HIDDEN.search(shown)
    for char in chars:
        assert f"[U+{ord(char):04X}]" in shown
    assert reveal_bytes(text.encode()) == shown.encode()


def test_ordinary_text_passes_untouched() -> None:
    for text in [
        "Grafana admin",
        "Müller — café \u2019quoted\u2019 → ok",
        "line\nbreak\ttab\r",
        "日本語 😀",
    ]:
        assert hidden_problem(text) is None
        assert reveal(text) == text
        content = text.encode()
        assert reveal_bytes(content) is content
    refuse_hidden(12)  # not text: nothing to refuse
    assert hidden_in({"group": "sre", "max_minutes": 60}) is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "short",
        "x" * 140,
        "x" * 141,
        "y" * 400,
        "e\u0301" * 100,  # 200 code points, 100 characters: NFC makes them 100
        "a\u0301\u0302" * 70,  # combining marks NFC cannot fold: 140 counted characters
        "a\u0301\u0302" * 71,
        "“quoted” words " * 12,
    ],
)
def test_truncate_chars_is_djangos_truncator(text: str) -> None:
    from django.utils.text import Truncator

    from apps.kit.text import truncate_chars

    assert truncate_chars(text, 140) == Truncator(text).chars(140)
