"""`toolkit preflight` and `toolkit verify`: checks before a run and of its evidence."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.markup import escape
from rich.table import Table

from toolkit.cli.app import cli, console, contract_option, err_console
from toolkit.core import contract as contract_mod
from toolkit.core.errors import ToolkitError
from toolkit.core.runner import default_contract_path

if TYPE_CHECKING:
    from toolkit.core.ledger import Ledger


@cli.command("preflight")
@contract_option
def preflight(contract_path: Path | None) -> int:
    """Check Python, dependencies, free ports, writable folders and the deterministic env."""
    from toolkit.gates.preflight import run_checks

    c = contract_mod.load(contract_path or default_contract_path())
    checks = run_checks(c)
    lock = contract_mod.check_lock(c)
    table = Table(title=f"preflight: {c.name} {c.version}")
    for col in ("check", "result", "detail"):
        table.add_column(col)
    for chk in checks:
        table.add_row(chk.name, "[green]ok[/]" if chk.ok else "[red]FAIL[/]", chk.detail)
    table.add_row(
        "contract lock", "[green]ok[/]" if lock.state == "ok" else "[red]FAIL[/]", lock.message
    )
    console.print(table)
    return 0 if all(x.ok for x in checks) and lock.state == "ok" else 1


@cli.command("verify")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--trust", "trust", multiple=True, type=click.Path(path_type=Path),
              help="Trusted runner keys (lines 'ed25519 <hex>'); default: $TOOLKIT_TRUSTED_KEYS or "
                   "the trust file beside the runner key, plus the runner key itself.")
@click.option("--quarantine", "do_quarantine", is_flag=True,
              help="Move runs that fail to <evidence>/invalidated/, with the reason in the ledger.")
def verify(path: Path, trust: tuple[Path, ...], do_quarantine: bool) -> int:
    """Check signatures, manifests, journal chains and the gate ledger; exit 1 on any problem."""
    from toolkit.core import signing
    from toolkit.core.evidence import verify_run

    if not path.exists():
        raise ToolkitError(f"{path}: no such file or folder; pass an evidence run folder")
    keys = signing.trusted_keys(list(trust))
    if not keys:
        raise ToolkitError("no trusted runner key: pass --trust FILE (lines 'ed25519 <hex>') or "
                           f"set ${signing.TRUST_ENV}; a signature is never checked against itself")
    ledger, runs = _verify_scope(path)
    if not runs and ledger is None:
        raise ToolkitError(
            f"{path}: no evidence run found (no manifest.sha256 or journal.jsonl below it)"
        )
    bad = 0
    for run in runs:
        problems = verify_run(run, keys)
        bad += bool(problems)
        _report_run(run, problems)
        if problems and do_quarantine and ledger is not None:
            from toolkit.core.ledger import quarantine

            target = quarantine(ledger, run, f"fails verify: {problems[0]}")
            err_console.print(f"  quarantined -> {target}")
    bad += _verify_ledger(ledger, runs, keys)
    return 1 if bad else 0


def _verify_scope(path: Path) -> tuple[Ledger | None, list[Path]]:
    from toolkit.core.evidence import find_runs
    from toolkit.core.ledger import INVALIDATED, LEDGER, Ledger
    from toolkit.gates.registry import GATES

    gate_names = {g.name for g in GATES}
    folders = [path.absolute(), *path.absolute().parents]
    ledger = next((Ledger(f) for f in folders if (f / LEDGER).is_file()), None)
    runs = set(find_runs(path))
    if ledger is None:  # deleted or replaced: this runner's head anchor still knows it
        roots = [*folders, *(r.absolute().parent.parent for r in runs)]
        ledger = next((Ledger(f) for f in roots if Ledger(f).anchored()), None)
    if ledger is not None and path.absolute() == ledger.root.absolute():
        runs |= {r for g in ledger.root.iterdir() if g.is_dir() and g.name != INVALIDATED
                 for r in g.iterdir() if r.is_dir() and g.name in gate_names}
    keep = [r for r in runs if ledger is None or INVALIDATED not in r.absolute().relative_to(
        ledger.root.absolute()).parts]
    return ledger, sorted(keep)



def _report_run(run: Path, problems: list[str]) -> None:
    if problems:
        err_console.print(f"[red]TAMPERED[/] {escape(str(run))}")
        for p in problems:
            err_console.print(f"  {escape(p)}")
    else:
        console.print(f"[green]ok[/] {escape(str(run))}")


def _verify_ledger(ledger: Ledger | None, runs: list[Path], keys: list[object]) -> int:
    from toolkit.core.ledger import check_runs, unknown_runs

    if ledger is None:
        return 0
    problems = check_runs(ledger, keys, deep=False)  # each run was verified above
    problems += [f"not in the ledger (copied or hand-written): {r.parent.name}/{r.name}"
                 for r in unknown_runs(ledger, runs)]
    for p in problems:
        err_console.print(f"[red]LEDGER[/] {escape(p)}")
    if not problems:
        attempts = len(ledger.attempts())
        console.print(f"[green]ok[/] ledger {escape(str(ledger.path))}: {attempts} attempts")
    return len(problems)
