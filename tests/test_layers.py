"""The architecture, checked: layers import downward only, Qt only in app/ui/ (and measurement),
llama.cpp only in app/engine/ (and measurement). In the spirit of qutebrowser's import checks."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

APP = ROOT / "app"
BELOW = {
    "errors": set(), "paths": set(),
    "scaffold": {"errors", "paths"},
    "engine": {"errors", "paths"},
    "models": {"errors", "paths", "engine"},
    "store": {"errors", "paths", "scaffold"},
    "chat": {"errors", "scaffold", "engine"},
    "ui": {"errors", "paths", "scaffold", "engine", "models", "store", "chat"},
    "cli": {"errors", "paths", "scaffold", "engine", "models", "store", "chat", "ui", "measure"},
    "measure": {"errors", "paths", "scaffold", "engine", "models", "store", "chat", "ui"},
    "__main__": {"cli"}, "__init__": set(),
}  # fmt: skip
GUARDED = {"PySide6": {"ui", "measure"}, "llama_cpp": {"engine", "measure"}}


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, at its top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def violations(app: Path) -> list[str]:
    found = []
    for path in sorted(app.rglob("*.py")):
        layer = path.relative_to(app).with_suffix("").parts[0]
        for module in imports_of(path):
            top, _, rest = module.partition(".")
            if top == "app" and rest:
                target = rest.split(".")[0]
                if target != layer and target not in BELOW[layer]:
                    found.append(f"{path.relative_to(app.parent)} ({layer}) imports {module}")
            elif top in GUARDED and layer not in GUARDED[top]:
                found.append(f"{path.relative_to(app.parent)} ({layer}) imports {top}")
    return found


def test_layers_import_downward_only_and_qt_and_llama_cpp_stay_home():
    assert len(list(APP.rglob("*.py"))) > 40
    assert violations(APP) == []


def test_the_check_catches_an_upward_import_and_a_stray_qt(tmp_path):
    fake = tmp_path / "app"
    (fake / "scaffold").mkdir(parents=True)
    (fake / "scaffold" / "bad.py").write_text(
        "from app.ui.main_window import MainWindow\nimport PySide6.QtCore\n"
    )
    (fake / "engine").mkdir()
    (fake / "engine" / "fine.py").write_text("import llama_cpp\nfrom app.errors import BasechatError\n")
    assert sorted(violations(fake)) == [
        "app/scaffold/bad.py (scaffold) imports PySide6",
        "app/scaffold/bad.py (scaffold) imports app.ui.main_window",
    ]


def test_every_third_party_import_is_declared_in_pyproject():
    """A package imported only because another one happens to bring it breaks the day it stops."""
    import re
    import sys
    from importlib.metadata import packages_distributions

    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + [
        r for extra in project["optional-dependencies"].values() for r in extra
    ]
    declared = {re.split(r"[<>=!~; \[]", r, maxsplit=1)[0].lower().replace("_", "-") for r in requirements}
    owners = packages_distributions()
    missing = set()
    for path in APP.rglob("*.py"):
        for module in imports_of(path):
            top = module.split(".")[0]
            if top == "app" or top in sys.stdlib_module_names:
                continue
            names = {d.lower().replace("_", "-") for d in owners.get(top, [top])}
            if not names & declared:
                missing.add(f"{top} ({', '.join(sorted(names))})")
    assert missing == set()
