"""`toolkit gates`: every gate in seed order, stopping at the first failure."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape

from toolkit.cli.app import cli, console, contract_option, err_console


@cli.command("gates")
@contract_option
@click.option("--profile", type=click.Choice(["quick", "full"]), default="quick", show_default=True,
              help="quick: scaled-down durations, same logic (a release of it is a rehearsal "
                   "at most); full: the contract's [cycle] (else the seed's 10 cycles, 30 min of "
                   "probes in all), [soak].duration and [determinism].runs.")
@click.option(
    "--dry-run", is_flag=True, help="Print what each gate would do; start and touch nothing."
)
def gates(contract_path: Path | None, profile: str, dry_run: bool) -> int:
    """Run every gate in order (cycle, soak, attack, secrets, drill, determinism); stop at the
    first failure.
    """
    from toolkit.gates.registry import Step, run_all

    if dry_run:
        from toolkit.core.runner import default_contract_path
        from toolkit.gates.registry import plan_gates

        for gate, planned in plan_gates(contract_path or default_contract_path()).items():
            console.print(f"[bold]{gate}[/]")
            for line in planned:
                console.print(f"  - {escape(line)}")
        return 0

    def progress(step: Step) -> None:
        style = "green" if step.verdict == "pass" else "red"
        console.print(
            f"[{style}]{step.gate}: {step.verdict}[/] {escape(step.evidence or step.note)}"
        )

    steps = run_all(contract_path, profile, progress)
    failed = next((s for s in steps if s.verdict != "pass"), None)
    if failed:
        err_console.print(f"blocker: gate {failed.gate} ({failed.verdict}); stopped there. Fix "
                          "its root cause and rerun from gate start; after two failures record it "
                          "with `toolkit blocker resolve`", markup=False)
        return failed.exit_code or 1
    console.print("all gates passed; `toolkit release` can now bundle and sign the evidence")
    return 0
