"""The layers hold: no import cycle anywhere, nothing imports upward (see ARCHITECTURE.md).

Imports are read with ast from every module of the project's packages, at module level and
inside functions alike; an import under ``if TYPE_CHECKING:`` runs only in the type checker,
so it counts for the layers but not for cycles.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("toolkit", "attacks", "chaos", "recovery", "reports", "targets")

# lower imports nothing higher; the first matching prefix wins
LAYERS: list[tuple[str, int]] = [
    ("toolkit.cli", 4), ("toolkit.__main__", 4),
    ("toolkit.gates", 3),
    ("reports", 2),
    ("attacks", 1), ("chaos", 1), ("recovery", 1),
    ("toolkit.core", 0), ("toolkit", 0),
]

Edges = dict[str, set[tuple[str, bool]]]  # module -> {(imported module, only for typing)}


def module_files(root: Path = REPO) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for pkg in PACKAGES:
        for f in sorted((root / pkg).rglob("*.py")):
            parts = f.relative_to(root).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return out


def _typing_only(tree: ast.Module) -> set[int]:
    """ids of the import nodes under ``if TYPE_CHECKING:``."""
    ids: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            ids |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return ids


def _targets(node: ast.Import | ast.ImportFrom, mod: str, is_pkg: bool,
             known: dict[str, Path]) -> set[str]:
    if isinstance(node, ast.Import):
        return {a.name for a in node.names}
    base = node.module or ""
    if node.level:
        parts = mod.split(".") if is_pkg else mod.split(".")[:-1]
        parts = parts[: len(parts) - node.level + 1]
        base = ".".join([*parts, *([node.module] if node.module else [])])
    return {f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names}


def import_edges(known: dict[str, Path]) -> Edges:
    edges: Edges = {}
    for mod, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        typing = _typing_only(tree)
        found: set[tuple[str, bool]] = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in _targets(node, mod, path.name == "__init__.py", known):
                    if target.split(".")[0] in PACKAGES and target != mod:
                        found.add((target, id(node) in typing))
        edges[mod] = found
    return edges


def layer(mod: str) -> int | None:
    for prefix, rank in LAYERS:
        if mod == prefix or mod.startswith(prefix + "."):
            return rank
    return None


def upward(edges: Edges) -> list[str]:
    bad = []
    for mod, targets in sorted(edges.items()):
        for target, _ in sorted(targets):
            low, high = layer(mod), layer(target)
            if low is not None and high is not None and high > low:
                bad.append(f"{mod} (layer {low}) imports {target} (layer {high})")
    return bad


def cycles(edges: Edges) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    graph = {m: sorted(t for t, typing in ts if not typing and t in edges)
             for m, ts in edges.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


@pytest.fixture(scope="module")
def edges() -> Edges:
    return import_edges(module_files())


def test_no_import_cycle(edges: Edges) -> None:
    assert cycles(edges) == []


def test_nothing_imports_upward(edges: Edges) -> None:
    assert upward(edges) == []


def test_every_toolkit_module_sits_in_a_layer(edges: Edges) -> None:
    top = [m for m in edges if m.startswith("toolkit.") and m.count(".") == 1
           and m not in ("toolkit.core", "toolkit.gates", "toolkit.cli", "toolkit.__main__")]
    assert top == []  # a new module goes into core, gates or cli


def test_the_checks_can_fail(tmp_path: Path) -> None:
    """Negative controls: a planted cycle and a planted upward import are both reported."""
    for pkg in PACKAGES:
        (tmp_path / pkg).mkdir()
        (tmp_path / pkg / "__init__.py").write_text("")
    (tmp_path / "toolkit" / "core").mkdir()
    (tmp_path / "toolkit" / "core" / "__init__.py").write_text("")
    (tmp_path / "toolkit" / "core" / "a.py").write_text("def f():\n    import attacks.b\n")
    (tmp_path / "attacks" / "b.py").write_text("from toolkit.core import a\n")
    found = import_edges(module_files(tmp_path))
    assert cycles(found) == [["attacks.b", "toolkit.core.a"]]
    assert upward(found) == ["toolkit.core.a (layer 0) imports attacks.b (layer 1)"]


def test_one_registry_of_gates_in_seed_order() -> None:
    from toolkit.gates import release
    from toolkit.gates.base import Gate
    from toolkit.gates.registry import GATES

    assert [g.name for g in GATES] == ["cycle", "soak", "attack", "secrets", "drill",
                                       "determinism"]
    assert all(isinstance(g, Gate) for g in GATES)
    assert len({g.label for g in GATES}) == len(GATES)
    assert release.GATES == tuple((g.name, g.title, g.label) for g in GATES)


def test_every_cli_command_returns_its_exit_code() -> None:
    """Commands return an int (main passes it on); only pure groups return nothing."""
    import click

    from toolkit.cli import cli

    def commands(group: click.Group) -> list[click.Command]:
        out: list[click.Command] = []
        for cmd in group.commands.values():
            out.append(cmd)
            if isinstance(cmd, click.Group):
                out += commands(cmd)
        return out

    found = commands(cli)
    leaves = [c for c in found if not isinstance(c, click.Group) or c.invoke_without_command]
    assert len(leaves) > 15
    wrong = [c.name for c in leaves
             if c.callback is None or c.callback.__annotations__.get("return") != "int"]
    assert wrong == []
