"""`toolkit soak`: gate 2; live progress while it runs, the verdict and reasons after."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.markup import escape

from toolkit.cli.app import cli, console, contract_option, err_console, seconds
from toolkit.cli.soak_progress import Progress

if TYPE_CHECKING:
    from toolkit.core.runner import GateResult
    from toolkit.gates.soak import SoakConfig


@cli.command("soak")
@contract_option
@click.option(
    "--duration", default=None, help="Scale the contract's [soak].duration down, e.g. 10m."
)
@click.option(
    "--warmup",
    default=None,
    help="Excluded from the statistics (default: the contract's, at most 1/5).",
)
@click.option(
    "--window",
    "--sample-interval",
    "window",
    default=None,
    help="Metrics window, one gate2-metrics-minute-NNNN.json each "
    "(default: [soak].window, else 60s).",
)
@click.option(
    "--stuck-after", default=None, help="A request in flight this long is stuck (default: 30s)."
)
@click.option("--seed", type=int, default=None, help="Seed for the arrival schedule (recorded).")
@click.option(
    "--engine",
    type=click.Choice(["builtin", "locust"]),
    default="builtin",
    show_default=True,
    help="builtin: one process, asyncio + h11; locust: Locust master and --workers workers.",
)
@click.option(
    "--workers", type=int, default=2, show_default=True, help="Locust workers to start here."
)
def soak(
    contract_path: Path | None,
    duration: str | None,
    warmup: str | None,
    window: str | None,
    stuck_after: str | None,
    seed: int | None,
    engine: str,
    workers: int,
) -> int:
    """Gate 2: open-model traffic, judged per window; aborts early on a breach, death or stuck
    request.
    """
    from toolkit.gates.soak import SoakConfig, run_soak

    cfg = SoakConfig(contract_path, seconds(duration, "--duration"), seconds(warmup, "--warmup"),
                     seconds(window, "--window"), seed, seconds(stuck_after, "--stuck-after"),
                     engine=engine, workers=workers)
    progress = start_progress(console, cfg)
    try:
        result = run_soak(cfg, [progress.attach])
    finally:
        progress.stop()
    return report_soak(console, err_console, result)


def start_progress(console: Console, cfg: SoakConfig) -> Progress:
    """A started display; pass ``progress.attach`` to ``run_soak`` as a subscriber."""
    progress = Progress(console, cfg.duration_s, cfg.sample_s)
    progress.start()
    return progress


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def report_soak(console: Console, err: Console, result: GateResult) -> int:
    b = result.body
    o = b["overall"]
    console.print(
        f"{o['count']} requests after warmup in {b['windows']} windows, error rate "
        f"{o['error_rate'] or 0:.4f}, p50 {_ms(o['p50_ms'])} ms, p95 {_ms(o['p95_ms'])} ms, "
        f"p99 {_ms(o['p99_ms'])} ms, restarts {len(b['restarts'])}: [bold]{result.verdict}[/]"
    )
    if b.get("abort_reason"):
        err.print(f"[red]aborted early[/]: {escape(b['abort_reason'])}")
    if b["generator"].get("saturated"):
        err.print(f"[yellow]the latency figures include the load generator's own delay, not only "
                  f"the target's[/]: "
                  f"{escape(b['generator']['saturated'])}")
    for m in b["measurements"]:
        if m["verdict"] != "pass":
            err.print(
                f"[red]{m['metric']}[/] {m['value']} {m['unit']} (threshold {m['threshold']}) "
                f"{escape(str(m['detail']))}"
            )
    if b.get("report"):
        console.print(f"report: {b['report']}")
    console.print(f"evidence: {result.summary_path}")
    return result.exit_code
