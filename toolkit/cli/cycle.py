"""`toolkit cycle`: gate 1, start/stop cycles with health probes."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape

from toolkit.cli.app import cli, console, contract_option, err_console, seconds


@cli.command("cycle")
@contract_option
@click.option("--count", type=int, default=None,
              help="Start/stop cycles (default: [cycle].count, else 10).")
@click.option("--health-duration", default=None,
              help="Health probing in all, over every cycle "
                   "(default: [cycle].health_duration, else 30m).")
@click.option("--interval", default=None, help="Probe interval (default: [cycle].interval, else "
              "[defaults].health_interval_s).")
@click.option("--startup-timeout", default=None, help="Override every service's startup timeout.")
def cycle(contract_path: Path | None, count: int | None, health_duration: str | None,
          interval: str | None, startup_timeout: str | None) -> int:
    """Gate 1: N start/stop cycles, healthy throughout, zero zombies, orphans and leftover
    listeners.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from toolkit.core.events import Bus, ChecksCounted, CyclePhase, CycleStarted
    from toolkit.gates.cycle import CycleConfig, cycle_strength, run_cycle

    full = cycle_strength(contract_path)
    count = count if count is not None else full.count
    health = seconds(health_duration, "--health-duration") if health_duration else None
    every = seconds(interval, "--interval") if interval else None
    startup = seconds(startup_timeout, "--startup-timeout") if startup_timeout else None
    cfg = CycleConfig(contract_path, count, full.health_s if health is None else health,
                      every or full.interval_s, startup or full.startup_s)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[checks]}"), TimeElapsedColumn(), console=console,
                  transient=False) as bar:
        task = bar.add_task("cycles", total=count, checks="")

        def progress(bus: Bus) -> None:  # the bar subscribes to the run's progress events
            bus.on(CycleStarted, lambda e: bar.update(task, completed=e.cycle - 1,
                                                      description=f"cycle {e.cycle}/{count}"))
            bus.on(ChecksCounted, lambda e: bar.update(
                task, checks=f"checks ok {e.passed} failed {e.failed}"))
            bus.on(CyclePhase, lambda e: bar.update(task, description=e.phase))

        result = run_cycle(cfg, [progress])
        bar.update(task, completed=result.body["cycles_completed"])
    b = result.body
    console.print(
        f"cycles {b['cycles_completed']}/{b['cycles_requested']}, checks passed "
        f"{b['health_checks_passed']}"
        f" failed {b['health_checks_failed']}, zombies {len(b['zombies'])}, orphans "
        f"{len(b['orphans'])}, "
        f"listeners {len(b['leftover_listeners'])}, escalations {len(b['escalations'])}: "
        f"[bold]{result.verdict}[/]"
    )
    if b["failure"]:
        err_console.print(f"[red]first failure:[/] {escape(b['failure'])}")
    console.print(f"evidence: {result.summary_path}", soft_wrap=True)
    return result.exit_code
