"""The package's module-level imports form no cycle, and no module imports a module that subclasses its classes
(a base that knows its subclasses cannot be extended without editing it)."""

from __future__ import annotations

import ast
from pathlib import Path

import lmtune

ROOT = Path(lmtune.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree: ast.Module, modules: set[str]) -> set[str]:
    """Modules of the package imported when this one is (not under TYPE_CHECKING, not inside functions)."""
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for child in [node] if not isinstance(node, (ast.If, ast.Try)) else ast.walk(node):
            if isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                names = [f"{child.module}.{a.name}" for a in child.names]
                found |= {n for n in [child.module, *names] if n in modules}
            elif isinstance(child, ast.Import):
                found |= {a.name for a in child.names if a.name in modules}
    return found


def _graph() -> tuple[dict[str, set[str]], dict[str, ast.Module]]:
    trees = {_module_name(p): ast.parse(p.read_text()) for p in ROOT.rglob("*.py")}
    return {name: _imports(tree, set(trees)) - {name} for name, tree in trees.items()}, trees


def test_module_level_imports_have_no_cycle() -> None:
    graph, _ = _graph()
    # A module's package __init__ runs before it: an import of lmtune.a.b also imports lmtune.a (unless the
    # importer lives in lmtune.a, which is then being imported already).
    for name in list(graph):
        parents = {target.rsplit(".", k)[0] for target in graph[name] for k in range(1, target.count("."))}
        graph[name] |= {p for p in parents if p in graph and p != name and not name.startswith(p + ".")}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt) :] + [nxt]
                raise AssertionError(" -> ".join(cycle))
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_no_module_imports_its_own_subclasses() -> None:
    graph, trees = _graph()
    defined = {
        name: {n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)} for name, tree in trees.items()
    }
    for name, tree in trees.items():
        every_import = {
            n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module in trees
        }
        for other in every_import:
            bases = {
                ast.unparse(b).split(".")[-1]
                for n in ast.walk(trees[other])
                if isinstance(n, ast.ClassDef)
                for b in n.bases
            }
            assert not (bases & defined[name]), (
                f"{name} imports {other}, which subclasses its {bases & defined[name]}"
            )
