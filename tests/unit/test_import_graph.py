"""The repository's Python imports without a circle: no module imports itself back, however far.

Every Python file git knows (tracked or new, not ignored) is read with `ast`, so the check does
not depend on how shared_layer, functions, the local platform, the connector, the Grafana and
SQL scripts or the tests are laid out, nor on any of them being importable. Imports inside
functions count (a function-local import once hid a circle in the local platform); imports
under `if TYPE_CHECKING:` do not, because they never run.

A module's name is what Python would call it: the path below the topmost folder of its package
chain (`infra/local/localplatform/profile.py` is `localplatform.profile`), or its bare file name
for a script or a function's handler, which run with their own folder on sys.path.
"""

from __future__ import annotations

import ast
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Module:
    name: str
    root: Path  # the folder on sys.path it is imported from
    path: Path

    @property
    def is_package(self) -> bool:
        return self.path.name == "__init__.py"


def python_files(repo: Path) -> list[Path]:
    """What git would track: committed or new files, never ignored ones (.venv, build, ...)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", "*.py"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [repo / name for name in listed if (repo / name).is_file()]


def module_of(path: Path, repo: Path) -> Module:
    """Root at the parent of the topmost package folder (one with __init__.py) above the
    file, so that namespace subpackages inside a package keep their dotted name."""
    root = path.parent
    for folder in path.parents:
        if folder == repo or repo not in folder.parents:
            break
        if (folder / "__init__.py").is_file():
            root = folder.parent
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return Module(".".join(parts), root, path)


def _runtime_imports(tree: ast.AST) -> Iterable[ast.Import | ast.ImportFrom]:
    """Every import statement, except those under `if TYPE_CHECKING:`."""
    pending = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            pending.extend(node.orelse)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        pending.extend(ast.iter_child_nodes(node))


def imported_names(module: Module) -> set[str]:
    """Absolute dotted names this module imports, `from a import b` giving a.b as well as a."""
    names: set[str] = set()
    package = module.name if module.is_package else module.name.rpartition(".")[0]
    for node in _runtime_imports(ast.parse(module.path.read_text(), str(module.path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:
            anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
            base = ".".join([*anchor, *([base] if base else [])])
        names.add(base)
        names.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return names


def import_graph(repo: Path) -> dict[Module, set[Module]]:
    """Edges to the most specific module an import names; a name several roots share (every
    function's `handler`) resolves to the importer's own root only."""
    modules = [module_of(path, repo) for path in python_files(repo)]
    by_name: dict[str, list[Module]] = {}
    for module in modules:
        by_name.setdefault(module.name, []).append(module)

    def resolve(name: str, importer: Module) -> Module | None:
        while name:
            found = by_name.get(name, [])
            local = [m for m in found if m.root == importer.root]
            if local or len(found) == 1:
                return (local or found)[0]
            if found:
                return None  # ambiguous across roots: not this importer's module
            name = name.rpartition(".")[0]
        return None

    graph: dict[Module, set[Module]] = {}
    for module in modules:
        targets = {resolve(name, module) for name in imported_names(module)}
        graph[module] = {t for t in targets if t is not None and t != module}
    return graph


def cycles(graph: dict[Module, set[Module]]) -> list[list[str]]:
    """One circle per strongly connected group of modules (Tarjan), as `a, b, ..., a`."""
    index: dict[Module, int] = {}
    low: dict[Module, int] = {}
    stack: list[Module] = []
    on_stack: set[Module] = set()
    groups: list[set[Module]] = []

    def visit(node: Module) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph, key=lambda m: (m.name, str(m.root))):
        if node not in index:
            visit(node)
    return [_circle_in(group, graph) for group in groups]


def _circle_in(group: set[Module], graph: dict[Module, set[Module]]) -> list[str]:
    """A shortest path from the group's first module back to itself, for the message."""
    start = min(group, key=lambda m: m.name)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(graph[node] & group, key=lambda m: m.name):
                if target == start:
                    return [m.name for m in [*paths[node], start]]
                if target not in paths:
                    paths[target] = [*paths[node], target]
                    following.append(target)
        frontier = following
    raise AssertionError("a strongly connected group always has a circle")


def test_the_repository_imports_without_a_circle() -> None:
    found = cycles(import_graph(REPO))
    assert not found, "import circles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_a_circle_hidden_in_a_function_is_found(tmp_path: Path) -> None:
    """The detector itself: the local platform's old circle in small, with the same disguise."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    package = tmp_path / "infra" / "platform"
    (package / "parts").mkdir(parents=True)
    for init in (package / "__init__.py", package / "parts" / "__init__.py"):
        init.write_text("")
    (package / "profile.py").write_text(
        "def cluster_url():\n    from .parts.cluster import url\n    return url()\n"
    )
    (package / "component.py").write_text("from .profile import cluster_url\n")
    (package / "parts" / "cluster.py").write_text("from ..component import cluster_url\n")
    (package / "typed.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from platform import typed2\n"
    )
    (package / "typed2.py").write_text("from . import typed\n")

    found = cycles(import_graph(tmp_path))

    assert found == [
        ["platform.component", "platform.profile", "platform.parts.cluster", "platform.component"]
    ]
