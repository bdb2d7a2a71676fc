"""Hidden and direction-changing characters in free text: the one rule, refused at input and
escaped on display.

A justification can carry characters a reader never sees: bidirectional controls
(U+202A-U+202E, U+2066-U+2069) that reorder what follows, so "approve for 1 day" can read as
something else; zero-width characters (U+200B-U+200F, U+2060, U+FEFF) that hide text or make
two different strings look alike; other Unicode format characters (category Cf: the soft
hyphen, tag characters, invisible operators, ...); control characters (category Cc, except
tab, line feed and carriage return), which include the terminal's escape; the line and
paragraph separators; and the Hangul fillers, which render as blank letters.

* ``hidden_problem(text)``: the sentence that refuses ``text`` (``None`` when it is clean).
  Forms, the API, the services and the resource configuration all refuse with it.
* ``reveal(text)``: the same characters made visible, ``[U+202E]``, for text that is
  already stored or comes from the identity provider. Pages (``RevealHiddenMiddleware``),
  emails and Slack messages are passed through it.

Everything the portal writes and reads back byte for byte (the audit trail and its exports,
the JSON API) keeps the text exactly; see docs/approving.md.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.text import Truncator

# Kept as explicit ranges (a character class for the regular expression); tests/kit checks
# that they are exactly the categories named above in this Python's Unicode database.
_RANGES = (
    # Cc, without tab (09), line feed (0A) and carriage return (0D)
    (0x00, 0x08),
    (0x0B, 0x0C),
    (0x0E, 0x1F),
    (0x7F, 0x9F),
    # Cf
    (0xAD, 0xAD),
    (0x600, 0x605),
    (0x61C, 0x61C),
    (0x6DD, 0x6DD),
    (0x70F, 0x70F),
    (0x890, 0x891),
    (0x8E2, 0x8E2),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
    # Zl, Zp
    (0x2028, 0x2029),
    # Hangul fillers (Lo, but blank)
    (0x115F, 0x1160),
    (0x3164, 0x3164),
    (0xFFA0, 0xFFA0),
)


def _class(ranges: tuple[tuple[int, int], ...]) -> str:
    return "".join(f"\\U{a:08x}-\\U{b:08x}" if a != b else f"\\U{a:08x}" for a, b in ranges)


HIDDEN = re.compile(f"[{_class(_RANGES)}]")
# The same without the characters beyond U+FFFF: four times faster on a page of text that
# has none of them (a regular expression's class with such ranges is slow to test).
_HIDDEN_BMP = re.compile(f"[{_class(tuple(r for r in _RANGES if r[1] <= 0xFFFF))}]")
# Bytes of printable ASCII, tab, line feed and carriage return: a page made only of them
# holds nothing to reveal.
_PLAIN_ASCII = bytes([9, 10, 13, *range(0x20, 0x7F)])
# The first bytes of the UTF-8 form of every hidden character beyond U+FFFF.
_ASTRAL_LEADS = (b"\xf0", b"\xf3")


def code_point(char: str) -> str:
    """``U+202E``: how a hidden character is named to people."""
    return f"U+{ord(char):04X}"


def _named(char: str) -> str:
    name = unicodedata.name(char, "")
    return f"{code_point(char)} {name}" if name else code_point(char)


def hidden_problem(text: str) -> str | None:
    """Why ``text`` is refused, naming the first hidden character and where it is; or None."""
    if text.isascii() and text.isprintable():
        return None  # the usual case, without a search
    found = HIDDEN.search(text)
    if found is None:
        return None
    return (
        f"contains a hidden or direction-changing character ({_named(found.group())}) at "
        f"position {found.start() + 1}; remove it and type the text again"
    )


def refuse_hidden(value: Any) -> None:
    """A form and model field validator: ``hidden_problem`` as a field error."""
    problem = hidden_problem(value) if isinstance(value, str) else None
    if problem is not None:
        raise ValidationError(f"This text {problem}.", code="hidden_character")


def hidden_in(value: Any) -> str | None:
    """``hidden_problem`` of the first string found in ``value``, a JSON value (lists and
    objects are walked, keys included): for configuration written as JSON."""
    if isinstance(value, str):
        return hidden_problem(value)
    if isinstance(value, dict):
        items: list[Any] = [*value.keys(), *value.values()]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        return None
    for item in items:
        problem = hidden_in(item)
        if problem is not None:
            return problem
    return None


def reveal(text: str) -> str:
    """``text`` with every hidden character replaced by its visible name: ``[U+202E]``."""
    if not HIDDEN.search(text):
        return text
    return HIDDEN.sub(lambda m: f"[{code_point(m.group())}]", text)


def reveal_bytes(content: bytes) -> bytes:
    """``reveal`` for a UTF-8 page; the same object back when there is nothing to reveal.

    Cheap on a page without hidden characters (the usual case): an ASCII page is checked
    with one ``translate``; any other page is decoded and searched once.
    """
    if content.isascii() and not content.translate(None, _PLAIN_ASCII):
        return content
    text = content.decode("utf-8", "surrogateescape")
    astral = any(lead in content for lead in _ASTRAL_LEADS)
    if not (HIDDEN if astral else _HIDDEN_BMP).search(text):
        return content
    return reveal(text).encode("utf-8", "surrogateescape")


def truncate_chars(text: str, length: int) -> str:
    """``Truncator(text).chars(length)``: text that already fits (most of it) is only
    normalized, as Django's Truncator does first, without its walk over every character."""
    normalized = unicodedata.normalize("NFC", text)
    if len(normalized) <= length:
        # Combining characters only shorten the count Django makes, so nothing is cut.
        return normalized
    return str(Truncator(normalized).chars(length))
