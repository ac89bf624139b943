"""Settings are read as ``settings.X``: defaults live in calltrack/settings.py only, never repeated at the call site."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_no_module_repeats_a_settings_default_with_getattr():
    offenders = []
    for folder in ("calltrack", "tracking", "numbers", "routing"):
        for path in (ROOT / folder).rglob("*.py"):
            if folder == "calltrack" and path.relative_to(ROOT / folder).parts[0] == "numbers":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if (
                    isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"
                    and len(node.args) == 3 and isinstance(node.args[0], ast.Name) and node.args[0].id == "settings"
                ):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
