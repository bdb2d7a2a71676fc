"""The classes of hidden and direction-changing characters the portal refuses and reveals
(``apps.kit.text``), each with every character a test should try."""

from __future__ import annotations

CLASSES: dict[str, str] = {
    "bidi embeddings and overrides": "\u202a\u202b\u202c\u202d\u202e",
    "bidi isolates": "\u2066\u2067\u2068\u2069",
    "zero-width characters": "\u200b\u200c\u200d\u2060\ufeff",
    "direction marks": "\u200e\u200f\u061c",
    "other format characters": "\u00ad\u2061\u2062\u2063\u2064\u206a\ufff9\U000e0001\U000e0041",
    "control characters": "\x01\x07\x1b\x7f\x85\x9b",
    "line and paragraph separators": "\u2028\u2029",
    "blank fillers": "\u115f\u3164\uffa0",
}
CLASS_IDS = list(CLASSES)


def spoof(chars: str) -> str:
    """A justification that hides each of ``chars`` inside ordinary words."""
    return "Need it for INC-42 " + "x".join(chars) + " please approve"
