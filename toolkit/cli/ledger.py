"""`toolkit blocker resolve` and `toolkit quarantine`: signed entries in the ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from toolkit.cli.app import cli, console, contract_option


@cli.group("blocker")
def blocker_group() -> None:
    """The seed's blocker procedure: a gate that failed twice needs a recorded remediation."""


@blocker_group.command("resolve")
@contract_option
@click.option("--gate", required=True,
              type=click.Choice(["cycle", "soak", "attack", "secrets", "drill", "determinism"]))
@click.option("--root-cause", "root_cause", required=True, type=click.Path(path_type=Path),
              help="File describing the root cause (stored in the ledger, shipped in the bundle).")
@click.option("--fix", required=True, help="What was changed to fix it.")
def blocker_resolve(contract_path: Path | None, gate: str, root_cause: Path, fix: str) -> int:
    """Record a signed remediation in the ledger; the gate may then be attempted again."""
    from toolkit.core.ledger import Ledger, resolve_blocker
    from toolkit.core.runner import contract_info, load_locked

    c = load_locked(contract_path)
    entry = resolve_blocker(Ledger(c.evidence_dir), gate, contract_info(c), root_cause, fix)
    console.print(f"remediation for {gate} recorded (ledger entry {entry['seq']}); "
                  "the gate may run again")
    return 0


@cli.command("quarantine")
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--why", required=True, help="Why the run is invalid (recorded in the ledger).")
def quarantine_cmd(run: Path, why: str) -> int:
    """Move a run to <evidence>/invalidated/ with its reason in the ledger."""
    from toolkit.core.ledger import quarantine

    ledger = _ledger_of(run)
    target = quarantine(ledger, run, why)
    console.print(f"quarantined: {run} -> {target}")
    return 0


def _ledger_of(path: Path) -> Any:
    from toolkit.core.errors import ToolkitError
    from toolkit.core.ledger import LEDGER, Ledger

    for folder in [path.absolute(), *path.absolute().parents]:
        if (folder / LEDGER).is_file():
            return Ledger(folder)
    raise ToolkitError(f"{path}: no {LEDGER} in it or above it; "
                       "is this a run of an evidence folder?")
