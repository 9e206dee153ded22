"""The architecture, checked, with no exemptions: layers import downward only; Qt only in app/ui/;
llama.cpp only in app/engine/; nothing above the engine names an engine class or an engine's
own module (it asks the factory); relative imports are resolved and checked like absolute ones;
no module reads another object's underscore attributes. In the spirit of qutebrowser's import
checks (scripts/dev/misc_checks.py)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

APP = ROOT / "app"
_UNDER_UI = {"errors", "paths", "scaffold", "engine", "models", "store", "chat", "service", "server"}
BELOW = {
    "errors": set(), "paths": {"errors"},
    "scaffold": {"errors", "paths"},
    "engine": {"errors", "paths"},
    "models": {"errors", "paths", "engine"},
    "store": {"errors", "paths", "scaffold"},
    "chat": {"errors", "scaffold", "engine"},
    "service": {"errors", "scaffold", "engine", "store", "chat"},
    "server": {"errors", "paths", "scaffold", "engine", "chat", "service", "__init__"},
    "ui": _UNDER_UI,
    "measure": _UNDER_UI | {"ui"},  # the window's own probes live in app/ui/probes.py
    "cli": _UNDER_UI | {"ui", "measure"},
    "__main__": {"cli"}, "__init__": set(),
}  # fmt: skip
GUARDED = {"PySide6": {"ui"}, "shiboken6": {"ui"}, "llama_cpp": {"engine"}}
# An engine's own modules and classes: above the engine layer only the factory and base.py are named.
ENGINE_INSIDES = {"app.engine.llama", "app.engine.remote", "app.engine.parallel", "app.engine.decoding"}
ENGINE_CLASSES = {"LlamaEngine", "RemoteEngine", "Decoding"}


def imports_of(path: Path, app: Path = APP) -> set[str]:
    """Every module a file imports (at its top or inside a function), relative imports resolved,
    and ``module:Name`` for each name taken from a module."""
    found = set()
    package = path.relative_to(app.parent).with_suffix("").parts[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else ()
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.add(module)
            found |= {f"{module}:{alias.name}" for alias in node.names}
    return found


def violations(app: Path) -> list[str]:
    found = []
    for path in sorted(app.rglob("*.py")):
        layer = path.relative_to(app).with_suffix("").parts[0]
        where = f"{path.relative_to(app.parent)} ({layer})"
        found += [f"{where} imports {module}" for module in sorted(imports_of(path, app))
                  if _forbidden(layer, module)]  # fmt: skip
    return found


def _forbidden(layer: str, module: str) -> bool:
    module, _, name = module.partition(":")
    top, _, rest = module.partition(".")
    if top in GUARDED:
        return layer not in GUARDED[top]
    if top != "app":
        return False
    target = rest.split(".")[0] if rest else ""
    if layer != "engine" and (name in ENGINE_CLASSES or module in ENGINE_INSIDES):
        return True
    return bool(target) and target != layer and target not in BELOW[layer]


def private_reads(app: Path) -> list[str]:
    """``obj._name`` where ``obj`` is not ``self`` or ``cls``, and ``from module import _name``."""
    found = []
    for path in sorted(app.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Attribute) and not _own(node.value):
                names = [node.attr]
            elif isinstance(node, ast.ImportFrom):
                names = [alias.name for alias in node.names]
            found += [f"{path.relative_to(app.parent)}:{node.lineno} {name}" for name in names
                      if name.startswith("_") and not name.startswith("__")]  # fmt: skip
    return found


def _own(value: ast.expr) -> bool:
    return isinstance(value, ast.Name) and value.id in ("self", "cls")


def test_layers_import_downward_only_and_qt_and_llama_cpp_stay_home():
    assert len(list(APP.rglob("*.py"))) > 40
    assert violations(APP) == []


def test_no_module_reads_another_objects_underscore_attributes():
    assert private_reads(APP) == []


def test_the_check_catches_an_upward_import_and_a_stray_qt(tmp_path):
    fake = tmp_path / "app"
    (fake / "scaffold").mkdir(parents=True)
    (fake / "scaffold" / "bad.py").write_text(
        "from app.ui.main_window import MainWindow\nimport PySide6.QtCore\n"
    )
    (fake / "engine").mkdir()
    (fake / "engine" / "fine.py").write_text("import llama_cpp\nfrom app.errors import BasechatError\n")
    assert sorted(violations(fake)) == [
        "app/scaffold/bad.py (scaffold) imports PySide6.QtCore",
        "app/scaffold/bad.py (scaffold) imports app.ui.main_window",
        "app/scaffold/bad.py (scaffold) imports app.ui.main_window:MainWindow",
    ]


def test_the_check_resolves_relative_imports_and_catches_engine_names(tmp_path):
    fake = tmp_path / "app"
    (fake / "store").mkdir(parents=True)
    (fake / "store" / "sneaky.py").write_text("from ..ui import main_window\nfrom . import chats\n")
    (fake / "measure").mkdir()
    (fake / "measure" / "named.py").write_text(
        "from app.engine.factory import open_backend\nfrom app.engine.llama import LlamaEngine\n"
        "import llama_cpp\n"
    )
    (fake / "ui").mkdir()
    (fake / "ui" / "peek.py").write_text("def f(window):\n    return window._ids, self._fine\n")
    assert sorted(violations(fake)) == [
        "app/measure/named.py (measure) imports app.engine.llama",
        "app/measure/named.py (measure) imports app.engine.llama:LlamaEngine",
        "app/measure/named.py (measure) imports llama_cpp",
        "app/store/sneaky.py (store) imports app.ui",
        "app/store/sneaky.py (store) imports app.ui:main_window",
    ]
    assert private_reads(fake) == ["app/ui/peek.py:2 _ids"]


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
            top = module.split(":")[0].split(".")[0]
            if top == "app" or top in sys.stdlib_module_names:
                continue
            names = {d.lower().replace("_", "-") for d in owners.get(top, [top])}
            if not names & declared:
                missing.add(f"{top} ({', '.join(sorted(names))})")
    assert missing == set()


def test_every_module_is_named_in_the_architecture_map():
    """docs/architecture.md is the map: a module it does not name is one a newcomer cannot find."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    missing = [str(path.relative_to(ROOT)) for path in sorted(APP.rglob("*.py"))
               if f"`{path.relative_to(ROOT)}`" not in text]  # fmt: skip
    assert not missing, missing
