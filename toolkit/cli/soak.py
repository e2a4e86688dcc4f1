"""The soak command's terminal side: live progress while it runs, the verdict and reasons after."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from toolkit.cli.soak_progress import Progress
from toolkit.core.runner import GateResult
from toolkit.gates.soak import SoakConfig


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
