"""The shape of the code, checked: packages whose imports go one way, no circles, core free of Qt,
desktop/ only Qt views, and modules short enough to read in a sitting (docs/ARCHITECTURE.md)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MAX_LINES = 500
QT_ROOTS = ("PySide6", "superqt", "pytestqt", "shiboken6")
BASE = ("core.paths", "core.files", "core.csvsafe", "core.formatting", "core.logs",
        "core.sqlite_busy", "core.version")  # foundation: any package may use
# Which core packages each package may import (besides itself and BASE): the arrows of ARCHITECTURE.md.
ALLOWED = {
    "imaging": set(),
    "models": {"imaging"},
    "screening": {"imaging", "models"},
    "reading": {"imaging", "models", "screening"},
    "training": {"imaging", "models", "screening"},
    "pacs": {"imaging", "models", "screening", "reading"},
    "cli": {"imaging", "models", "screening", "reading", "training", "pacs"},
}


def _modules(package: str) -> dict[str, Path]:
    found = {}
    for path in sorted((REPO / package).rglob("*.py")):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imports(path: Path, module: str, top_level_only: bool = False) -> set[str]:
    """Modules `path` imports (absolute names), at module level only or anywhere in it."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    names = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


CORE = _modules("core")
DESKTOP = _modules("desktop")


def _is_base(name: str) -> bool:
    return name == "core" or any(name == b or name.startswith(b + ".") for b in BASE)


def _package_of(module: str) -> str | None:
    """`core.models.registry` -> "models"; None for the foundation modules."""
    return None if _is_base(module) else module.split(".")[1]


def test_core_never_imports_qt():
    offenders = [m for m, p in CORE.items() if any(n.split(".")[0] in QT_ROOTS for n in _imports(p, m))]
    assert offenders == []


def test_every_desktop_module_is_a_qt_view():
    """Logic that needs no Qt belongs in core/, where the CLI can use it too."""
    offenders = [m for m, p in DESKTOP.items() if p.name != "__init__.py"
                 and not any(n.split(".")[0] in QT_ROOTS or n.startswith("matplotlib.backends")
                             for n in _imports(p, m))]
    assert offenders == []


@pytest.mark.parametrize("path", [p for p in list(CORE.values()) + list(DESKTOP.values())],
                         ids=lambda p: str(p.relative_to(REPO)))
def test_no_source_file_is_longer_than_a_sitting(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.name} has {lines} lines: split it by what its parts do"


def test_core_packages_import_one_way():
    wrong = []
    for module, path in CORE.items():
        package = _package_of(module)
        if package is None:
            continue
        for name in _imports(path, module):
            if not name.startswith("core.") or _is_base(name):
                continue
            target = _package_of(name)
            if target and target != package and target not in ALLOWED.get(package, set()):
                wrong.append(f"{module} -> {name}")
    assert sorted(set(wrong)) == []


def test_no_import_circles():
    """Module-level imports between project modules form no cycle (lazy imports inside functions
    are fine: they run after every module has loaded)."""
    modules = {**CORE, **DESKTOP}
    graph = {m: {n for n in _imports(p, m, top_level_only=True) if n in modules and n != m}
             for m, p in modules.items()}
    # A package's __init__ is imported by its sub-modules implicitly; that edge is not a cycle.
    seen, on_path, cycles = set(), [], []

    def visit(node):
        if node in on_path:
            cycles.append(on_path[on_path.index(node):] + [node])
            return
        if node in seen:
            return
        seen.add(node)
        on_path.append(node)
        for nxt in sorted(graph[node]):
            visit(nxt)
        on_path.pop()

    for module in sorted(graph):
        visit(module)
    assert cycles == []
