"""The import graph of ``src/wgan``, read with :mod:`ast` (nothing is imported): no cycles.

Every ``import wgan...`` and ``from ... import`` of a ``wgan`` module counts, wherever it stands
(module level, inside a function, under ``if TYPE_CHECKING``); relative imports are resolved
against the importing module. ``from pkg import name`` is an edge to ``pkg.name`` when that is
a module of the package, else to ``pkg`` itself (its ``__init__``).
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "wgan"

# (importer, imported) -> line of the first import statement that makes the edge
Edges = dict[tuple[str, str], int]


def _module_files(root: Path = SRC / PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under the package (``__init__`` = pkg)."""
    mods = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        mods[".".join(parts)] = path
    return mods


def _known(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of ``name`` that is a module of the package (None if outside it)."""
    parts = name.split(".")
    while parts:
        cand = ".".join(parts)
        if cand in modules:
            return cand
        parts.pop()
    return None


def _targets(node: ast.AST, module: str, is_pkg: bool, modules: dict[str, Path]) -> list[str]:
    """Package modules that the import statement ``node`` in ``module`` loads."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
        return [t for t in (_known(n, modules) for n in names) if t]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        anchor = module.split(".") if is_pkg else module.split(".")[:-1]
        anchor = anchor[: len(anchor) - (node.level - 1)]
        base = ".".join(anchor + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    if base.split(".")[0] != PACKAGE:
        return []
    out = []
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        target = sub if sub in modules else _known(base, modules)
        if target:
            out.append(target)
    return out


def import_graph() -> Edges:
    modules = _module_files()
    edges: Edges = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(tree):
            for target in _targets(node, module, is_pkg, modules):
                if target != module:
                    line = getattr(node, "lineno", 0)
                    edges[(module, target)] = min(edges.get((module, target), line), line)
    return edges


def _components(edges: Edges) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    succ: dict[str, list[str]] = {}
    for a, b in sorted(edges):
        succ.setdefault(a, []).append(b)
        succ.setdefault(b, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in succ[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(succ):
        if v not in index:
            visit(v)
    return sorted(found)


def _one_cycle(comp: list[str], edges: Edges) -> list[str]:
    """A shortest cycle through the first module of ``comp``, staying inside ``comp``."""
    start, members = comp[0], set(comp)
    prev: dict[str, str] = {}
    frontier = [start]
    while frontier:  # breadth-first, so the cycle printed is a shortest one
        nxt = []
        for v in frontier:
            for a, b in sorted(edges):
                if a != v or b not in members:
                    continue
                if b == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(prev[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if b not in prev:
                    prev[b] = v
                    nxt.append(b)
        frontier = nxt
    raise AssertionError(f"{comp} is not a cycle")  # pragma: no cover


def describe(comps: list[list[str]], edges: Edges) -> str:
    lines = []
    for comp in comps:
        cycle = _one_cycle(comp, edges)
        steps = " -> ".join(
            f"{a} (line {edges[(a, b)]})" for a, b in zip(cycle, cycle[1:], strict=False)
        )
        lines.append(f"cycle among {', '.join(comp)}:\n  {steps} -> {cycle[-1]}")
    return "\n".join(lines)


def test_the_graph_sees_relative_and_function_level_imports(tmp_path):
    pkg = tmp_path / PACKAGE
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from . import a\n")
    (pkg / "sub" / "a.py").write_text("from .b import f\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from ..sub import thing\n    import wgan.c\n")
    (pkg / "c.py").write_text("import os\nfrom wgan.sub.a import nothing\n")
    modules = _module_files(pkg)
    assert set(modules) == {"wgan", "wgan.sub", "wgan.sub.a", "wgan.sub.b", "wgan.c"}
    edges: Edges = {}
    for module, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            for t in _targets(node, module, path.name == "__init__.py", modules):
                edges[(module, t)] = getattr(node, "lineno", 0)
    assert set(edges) == {
        ("wgan.sub", "wgan.sub.a"),
        ("wgan.sub.a", "wgan.sub.b"),
        ("wgan.sub.b", "wgan.sub"),
        ("wgan.sub.b", "wgan.c"),
        ("wgan.c", "wgan.sub.a"),
    }
    comps = _components(edges)
    assert comps == [["wgan.c", "wgan.sub", "wgan.sub.a", "wgan.sub.b"]]
    assert "wgan.c (line 2) -> wgan.sub.a (line 1) -> wgan.sub.b (line 3) -> wgan.c" in (
        describe(comps, edges)
    )


def test_no_cycle_through_the_data_package():
    """No import cycle takes in a ``wgan.data`` module (whether or not it leaves the package)."""
    edges = import_graph()
    assert any(a.startswith("wgan.data.") for a, _ in edges)  # the graph was read at all
    comps = [c for c in _components(edges) if any(m.split(".")[:2] == ["wgan", "data"] for m in c)]
    if comps:
        print(describe(comps, edges))
    assert not comps, describe(comps, edges)


def test_no_cycle_in_the_whole_package():
    """Imports flow one way: cli on top; run handle below train; data registry above loaders."""
    edges = import_graph()
    comps = _components(edges)
    if comps:
        print(describe(comps, edges))
    assert not comps, describe(comps, edges)


def _top_level(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2])


def test_top_level_packages_import_one_way():
    """The layers: collapsed to the top-level modules and packages (wgan.cli, wgan.gan, ...),
    the graph has no cycle either, so imports between packages flow one way."""
    edges = import_graph()
    packages: Edges = {}
    for (a, b), line in edges.items():
        pa, pb = _top_level(a), _top_level(b)
        if pa != pb and pb != PACKAGE and pa != PACKAGE:  # wgan/__init__ only re-exports lazily
            packages.setdefault((pa, pb), line)
    assert ("wgan.cli", "wgan.training") in packages  # the collapsed graph was read at all
    comps = _components(packages)
    assert not comps, describe(comps, packages)


def test_at_most_about_twenty_top_level_entries():
    entries = {p.stem for p in (SRC / PACKAGE).iterdir() if p.suffix == ".py" or p.is_dir()}
    entries -= {"__pycache__"}
    assert len(entries) <= 20, sorted(entries)
    modules = {p.stem for p in (SRC / PACKAGE).glob("*.py")}
    assert modules <= {"__init__", "__main__", "errors"}, sorted(modules)
