"""`toolkit drill` and `toolkit drill history`: gate 4, the durability drill."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from toolkit.cli.app import cli, console, contract_option, seconds


@cli.group("drill", invoke_without_command=True)
@contract_option
@click.option(
    "--fault",
    "faults",
    multiple=True,
    help="kill, hang, corrupt-header, corrupt-page, truncate, bitflip, "
    "torn-wal, delete-wal, clear-state, corrupt-backup (repeatable; default: a seeded "
    "combination).",
)
@click.option(
    "--seed", type=int, default=None, help="Seed for the fault plan and recipes (recorded)."
)
@click.option("--dry-run", is_flag=True, help="List what would be done and touch nothing.")
@click.option(
    "--warmup",
    default="3s",
    show_default=True,
    help="Sentinel writes and backups before the disaster.",
)
@click.option("--backup-interval", default="0.5s", show_default=True,
              help="Continuous backup interval (0.5 s keeps RPO under 1 s).")
@click.pass_context
def drill(
    ctx: click.Context,
    contract_path: Path | None,
    faults: tuple[str, ...],
    seed: int | None,
    dry_run: bool,
    warmup: str,
    backup_interval: str,
) -> int:
    """Gate 4: back up, break (kill, corrupt SQLite, clear state), restore, and measure RPO and
    RTO.
    """
    if ctx.invoked_subcommand is not None:
        return 0  # main returns the subcommand's code
    from toolkit.gates.drill import run_plan
    from toolkit.gates.drill_plan import DrillConfig, check_faults, drill_plan

    check_faults(list(faults))
    cfg = DrillConfig(
        contract_path,
        list(faults),
        seed,
        dry_run,
        seconds(warmup, "--warmup") or 0.0,
        seconds(backup_interval, "--backup-interval") or 0.5,
    )
    planned = drill_plan(cfg)  # the seed is drawn once here: printed, run with, recorded
    if dry_run:
        for step in planned.steps():
            console.print(f"- {escape(step)}")
        return 0
    console.print(f"drill seed {planned.seed} (rerun with --seed {planned.seed})")
    result = run_plan(planned)
    b = result.body
    rpo = "none survived" if b["rpo_s"] is None else f"{b['rpo_s']:.3f} s"
    rto = "not recovered" if b["rto_s"] is None else f"{b['rto_s']:.3f} s"
    console.print(
        f"faults {', '.join(b['faults'])}: RPO {rpo}, RTO {rto}, "
        f"{b['lost_writes']} of {b['acknowledged_writes']} acknowledged writes lost, integrity "
        f"{'ok' if b['integrity_ok'] else 'FAILED'}, healthy {b['healthy']}: "
        f"[bold]{result.verdict}[/]"
    )
    console.print(f"evidence: {result.summary_path}", soft_wrap=True)
    return result.exit_code


@drill.command("history")
@contract_option
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of the table.")
@click.option("--html", "html_path", type=click.Path(path_type=Path), default=None,
              help="Also write a self-contained HTML page with RPO/RTO plots here.")
def drill_history(contract_path: Path | None, as_json: bool, html_path: Path | None) -> int:
    """Trend table of past drills: RPO, RTO, lost writes, verdict ("running": never sealed)."""
    import json

    from reports.drill_history import read_history
    from toolkit.core import contract as contract_mod
    from toolkit.core.runner import default_contract_path

    c = contract_mod.load(contract_path or default_contract_path())
    rows = read_history(c)
    if html_path is not None:
        from reports.drill_html import render_history
        from toolkit.core.errors import UsageError
        from toolkit.core.evidence import atomic_write

        page = render_history(f"Drill history: {c.name} {c.version}", rows).encode()
        try:
            atomic_write(html_path, page)
        except OSError as exc:
            raise UsageError(f"--html {html_path}: cannot write the page "
                             f"({exc.strerror or exc}); give a file path in a writable folder"
                             ) from None
        console.print(f"report: {html_path}")
    cols = ("run_id", "at", "faults", "rpo_s", "rto_s", "lost", "verdict")
    if as_json:
        click.echo(
            json.dumps({"drills": [dict(zip(cols, r, strict=True)) for r in rows]}, indent=2)
        )
        return 0
    table = Table(title="drill history")
    for col in ("run", "at", "faults", "RPO s", "RTO s", "lost", "verdict"):
        table.add_column(col, no_wrap=col in ("run", "at", "verdict"))  # run ids never truncated

    def num(v: object) -> str:
        return "-" if not isinstance(v, (int, float)) else f"{v:.3f}"

    for run_id, at, faults, rpo, rto, lost, verdict in rows:
        table.add_row(escape(str(run_id)), escape(str(at)), escape(str(faults)), num(rpo), num(rto),
                      "-" if lost is None else str(lost),
                      "[green]pass[/]" if verdict == "pass" else f"[red]{escape(str(verdict))}[/]")
    console.print(table if rows else "no drills recorded yet")
    return 0
