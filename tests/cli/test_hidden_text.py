"""What ``jit`` prints of the portal's text: hidden and direction-changing characters, class by
class, as ``[U+202E]`` for people and as JSON ``\\u`` escapes (the exact values) for scripts;
and what it says when the portal refuses them at input (a 400 naming the field, exit 2)."""

from __future__ import annotations

import json

import pytest

from tests.cli.canned import error, request
from tests.cli.inprocess import run_jit
from tests.support.hidden_text import CLASS_IDS, CLASSES, spoof


def rejected_request(reason: str) -> dict[str, object]:
    return request(
        7, state="rejected", outcome="Rejected", decision_reason=reason, grant=None, approvals=0
    )


@pytest.mark.parametrize("name", CLASS_IDS)
def test_jit_prints_them_escaped_and_json_keeps_them_exact(portal, tmp_path, name):
    chars = CLASSES[name]
    reason = spoof(chars)
    portal.answer("GET", "/requests/7", rejected_request(reason))

    shown = run_jit("status", "7", home=tmp_path)
    scripted = run_jit("status", "7", "--json", home=tmp_path)

    assert shown.returncode == 0 and scripted.returncode == 0
    for output in (shown.stdout, scripted.stdout):
        assert [c for c in chars if c in output] == []
    for char in chars:
        assert f"[U+{ord(char):04X}]" in shown.stdout
    assert json.loads(scripted.stdout)["decision_reason"] == reason


def test_a_refusal_at_input_is_one_line_naming_the_field(portal, tmp_path):
    portal.answer(
        "POST",
        "/requests",
        error(
            400,
            "Some values are missing or malformed.",
            code="validation_error",
            fields={
                "justification": "Value error, contains a hidden or direction-changing "
                "character (U+202E RIGHT-TO-LEFT OVERRIDE) at position 3"
            },
        ),
    )

    result = run_jit("request", "grafana", "--for", "1h", "--reason", "ab\u202ecd", home=tmp_path)

    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "justification: Value error, contains a hidden" in result.stderr
    assert "U+202E RIGHT-TO-LEFT OVERRIDE" in result.stderr
