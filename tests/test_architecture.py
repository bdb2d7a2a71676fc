"""Dependencies run one way (README "Architecture"): access -> accounts, audit; accounts -> audit;
audit -> nothing. The product never imports the demo or the Zero simulator."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

APPS = Path(__file__).resolve().parents[1] / "apps"

# app -> project apps it must never import
FORBIDDEN = {
    "audit": {"accounts", "access", "zero", "notifications", "demo", "api"},
    "accounts": {"access", "zero", "notifications", "demo", "api"},
    "access": {"demo", "api"},
    "zero": {"demo", "api"},
    "notifications": {"demo", "zero", "api"},
    # The API is a second front end over access: it reads and calls services, nothing else.
    "api": {"demo", "zero", "notifications"},
}


def imported_apps(path: Path) -> set[tuple[str, int]]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if len(parts) > 1 and parts[0] == "apps":
                found.add((parts[1], node.lineno))
    return found


@pytest.mark.parametrize("app", sorted(FORBIDDEN))
def test_dependencies_run_one_way(app: str) -> None:
    offending = [
        f"{path.relative_to(APPS.parent)}:{line} imports apps.{target}"
        for path in sorted((APPS / app).rglob("*.py"))
        if "migrations" not in path.parts
        for target, line in imported_apps(path)
        if target in FORBIDDEN[app]
    ]
    assert offending == []


def test_product_code_never_imports_the_simulator() -> None:
    offending = [
        str(path.relative_to(APPS.parent))
        for path in APPS.rglob("*.py")
        if "simulator" not in path.name
        and not path.name.startswith("sim_")
        and "management" not in path.parts
        and "apps.zero.simulator" in path.read_text(encoding="utf-8")
        and not path.is_relative_to(APPS / "demo")
    ]
    assert offending == []
