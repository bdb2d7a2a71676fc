"""Every target the Makefile declares does something (none is a name without a rule)."""

from __future__ import annotations

import re

from tests.support.processes import ROOT


def test_every_declared_target_has_a_rule() -> None:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    (phony,) = re.findall(r"^\.PHONY:(.*)$", text, flags=re.MULTILINE)
    declared = set(phony.split())
    rules = dict(
        re.findall(r"^([A-Za-z][\w.-]*):(?!=)([^\n]*(?:\n\t[^\n]*)*)", text, flags=re.MULTILINE)
    )
    assert declared <= set(rules), declared - set(rules)
    for name in declared:
        prerequisites, *recipe = rules[name].split("\n")
        assert recipe or prerequisites.strip(), f"make {name} does nothing"
