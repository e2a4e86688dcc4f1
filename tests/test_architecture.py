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


# ------------------------------------------------------------------ typed events, writers

WRITE_CALLS = {"write_text", "write_bytes", "write_json", "atomic_write", "dump"}

# Files a gate module may write itself: none of them is evidence or a report (those are
# written by subscribers to the run's events). (module, function) -> why.
GATE_WRITES_ALLOWED = {
    ("toolkit.gates.drill", "_corrupt_backups"): "the corrupt-backup fault itself",
    ("toolkit.gates.mcp_static", "compare"): "the pinned tool fingerprints (state, not a report)",
    ("toolkit.gates.secrets_scan", "planted"): "the canary file the scan must find",
    ("toolkit.gates.secrets_scan", "save_baseline"): "the baseline the user asked to update",
    ("toolkit.gates.secrets_scan", "cell_secrets"): "a scratch file detect-secrets reads",
    ("toolkit.gates.soak_locust", "_spawn"): "a Locust process's own output",
    ("toolkit.gates.soak_locustfile", "_collect"): "a Locust worker's spool (its own process)",
    ("toolkit.gates.soak_locustfile", "_started"): "a Locust worker's spool (its own process)",
    # the release ceremony is no gate run (no bus): the bundle, its signature and the keys
    # are what it makes
    ("toolkit.gates.release", "_write"): "the release files",
    ("toolkit.gates.release", "keygen"): "a release key pair",
    ("toolkit.gates.release", "deterministic_tar"): "a tar built in memory",
    ("toolkit.gates.release", "scan_bundle"): "a canary in the bundle's scratch copy",
}


def _mode(call: ast.Call, at: int) -> str:
    args = [*call.args[at:at + 1], *(k.value for k in call.keywords if k.arg == "mode")]
    return next((a.value for a in args if isinstance(a, ast.Constant)
                 and isinstance(a.value, str)), "r")


def _writes(call: ast.Call) -> bool:
    func = call.func
    name = func.id if isinstance(func, ast.Name) else \
        func.attr if isinstance(func, ast.Attribute) else ""
    if name == "open":  # open(path, mode) or path.open(mode)
        return bool(set(_mode(call, 1 if isinstance(func, ast.Name) else 0)) & set("wax+"))
    return name in WRITE_CALLS


def gate_writes(files: dict[str, Path]) -> list[tuple[str, str, int]]:
    """(module, enclosing function, line) of each file write in a toolkit.gates module."""
    found = []
    for mod, path in files.items():
        if not mod.startswith("toolkit.gates."):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.Call) and _writes(node):
                    found.append((mod, fn.name, node.lineno))
    return sorted(set(found))


def string_emits(files: dict[str, Path]) -> list[str]:
    """Calls of emit/_emit (the bus) that pass a string kind or keyword data, not an Event."""
    bad = []
    for mod, path in files.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else \
                func.id if isinstance(func, ast.Name) else ""
            if name not in ("emit", "_emit"):
                continue
            first = node.args[0] if node.args else None
            stringy = isinstance(first, ast.JoinedStr) or (
                isinstance(first, ast.Constant) and isinstance(first.value, str))
            if stringy or node.keywords or len(node.args) != 1:
                bad.append(f"{mod}:{node.lineno}: {ast.unparse(node)[:80]}")
    return bad


def test_events_are_typed_everywhere() -> None:
    assert string_emits(module_files()) == []


def test_gates_write_no_evidence_or_report_file() -> None:
    """Evidence and reports are written by subscribers (reports/), never by a gate module."""
    writes = gate_writes(module_files())
    assert [w for w in writes if w[:2] not in GATE_WRITES_ALLOWED] == []
    assert {w[:2] for w in writes} == set(GATE_WRITES_ALLOWED)  # no stale allowance


def test_the_event_and_write_checks_can_fail(tmp_path: Path) -> None:
    """Negative controls: a string kind, keyword data and three kinds of gate writes."""
    (tmp_path / "toolkit" / "gates").mkdir(parents=True)
    for pkg in PACKAGES:
        (tmp_path / pkg).mkdir(exist_ok=True)
        (tmp_path / pkg / "__init__.py").write_text("")
    (tmp_path / "toolkit" / "gates" / "__init__.py").write_text("")
    (tmp_path / "toolkit" / "gates" / "g.py").write_text(
        "def run(run, kind):\n"
        "    run.emit('x.done', verdict='pass')\n"
        "    run.bus.emit(f'cycle.{kind}')\n"
        "    run.emit(Done(), extra=1)\n"
        "    run.evidence.write_json('a.json', {})\n"
        "    with open('b.txt', 'w') as fh:\n"
        "        fh.write('')\n"
        "    with open('c.txt') as fh:\n"
        "        fh.read()\n"
        "    p.open(mode='ab')\n"
    )
    files = module_files(tmp_path)
    assert len(string_emits(files)) == 3
    assert gate_writes(files) == [("toolkit.gates.g", "run", 5), ("toolkit.gates.g", "run", 6),
                                  ("toolkit.gates.g", "run", 10)]
