"""State badges are made once per state and label, and stay exactly what format_html makes."""

from __future__ import annotations

from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy, override

from apps.access.admin.actions import BADGE, STATE_COLOURS, badge


def test_badge_escapes_text_and_keeps_safe_markup_apart() -> None:
    plain, safe = badge("pending", "<b>"), badge("pending", SafeString("<b>"))
    assert "&lt;b&gt;" in plain and "<b>" not in plain
    assert "<b>" in safe
    # Served again, each keeps its own form, whichever came first.
    assert badge("pending", "<b>") == plain and badge("pending", SafeString("<b>")) == safe
    bg, fg = STATE_COLOURS["pending"]
    assert plain == format_html(BADGE, bg, fg, "<b>")


def test_badge_with_a_lazy_label_follows_the_language() -> None:
    label = gettext_lazy("Yes")
    with override("fr"):
        assert "Oui" in badge("approved", label)
    with override("en"):
        assert "Yes" in badge("approved", label)
