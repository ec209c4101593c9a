"""The modules of ``revenge/`` import each other without circles, and ``web/`` is only imported by the
entry points: layers import downward (web → services → stores/engines → plumbing).

Every import statement counts, wherever it stands (top level, inside a function, under
``TYPE_CHECKING``): a lazy or type-only import still ties the two modules together for a reader.
"""

from __future__ import annotations

import ast
from pathlib import Path

import revenge

ROOT = Path(revenge.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """The ``revenge`` modules ``path`` imports: ``from pkg import mod`` names the module ``pkg.mod``."""
    found: set[str] = set()
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                if f"{base}.{alias.name}" in modules:
                    found.add(f"{base}.{alias.name}")
                elif base in modules:
                    found.add(base)
    found.discard(module_name(path))
    return found


def import_graph() -> dict[str, set[str]]:
    modules = all_modules()
    return {name: imports_of(path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_cycle_finder_finds_a_lazy_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_relative_and_package_imports_resolve(tmp_path: Path) -> None:
    modules = all_modules()
    graph = import_graph()
    assert "revenge.progress.rules" in graph["revenge.progress.service"]  # from revenge.progress import rules
    assert set(graph) == set(modules)


def test_revenge_has_no_import_circles() -> None:
    assert cycles(import_graph()) == []


# Who may import the web layer: the app factory and the CLI/server entry points, and web itself.
WEB_IMPORTERS = ("revenge.web", "revenge.app", "revenge.server", "revenge.cli", "revenge.subsonic")


def test_only_the_entry_points_import_the_web_layer() -> None:
    offenders = sorted(
        f"{name} imports {target}"
        for name, targets in import_graph().items()
        if not name.startswith(WEB_IMPORTERS)
        for target in targets
        if target.startswith("revenge.web")
    )
    assert offenders == []
