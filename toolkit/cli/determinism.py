"""`toolkit determinism`: gate 5, the test command run N times."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape

from toolkit.cli.app import cli, console, contract_option, err_console, seconds


@cli.command("determinism")
@contract_option
@click.option(
    "--runs", type=int, default=None, help="Runs to compare (default: [determinism].runs, else 2)."
)
@click.option(
    "--no-stack", is_flag=True, help="Do not start the contract's services around the runs."
)
@click.option("--timeout", default="30m", show_default=True, help="Limit for one run.")
def determinism(contract_path: Path | None, runs: int | None, no_stack: bool, timeout: str) -> int:
    """Gate 5: run the contract's test command N times under a locked environment; same outcome per
    test.
    """
    from toolkit.gates.determinism import DeterminismConfig, run_determinism

    result = run_determinism(DeterminismConfig(contract_path, runs, not no_stack,
                                               seconds(timeout, "--timeout") or 1800.0))
    b = result.body
    console.print(
        f"{b['runs']} runs of {b['tests']} tests: passed {b['pass_counts']}, failed "
        f"{b['fail_counts']}, "
        f"diverging {len(b['diverging_tests'])}: [bold]{result.verdict}[/]"
    )
    for name, outcomes in list(b["diverging_tests"].items())[:20]:
        err_console.print(f"[red]non-deterministic[/] {escape(name)}: {' / '.join(outcomes)}")
    for index, names in list(b.get("unexpected_failures", {}).items())[:5]:
        err_console.print(
            f"[red]run {index} failed[/] {escape(', '.join(names[:10]))}"
            f"{' …' if len(names) > 10 else ''} (not in [determinism].expected_failures)"
        )
    console.print(f"evidence: {result.summary_path}", soft_wrap=True)
    return result.exit_code
