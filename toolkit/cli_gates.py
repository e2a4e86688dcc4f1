"""Gate commands that have landed: cycle and attack."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from toolkit.cli import cli, console, contract_option, done, err_console


def _seconds(value: str | None, name: str) -> float | None:
    from toolkit.errors import UsageError
    from toolkit.schema import parse_duration

    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise UsageError(f"{name} {value!r}: {exc}") from None


@cli.command("cycle")
@contract_option
@click.option("--count", type=int, default=10, show_default=True, help="Start/stop cycles.")
@click.option("--health-duration", default="30m", show_default=True, help="How long each cycle probes health.")
@click.option("--interval", default=None, help="Probe interval (default: [defaults].health_interval_s).")
@click.option("--startup-timeout", default=None, help="Override every service's startup timeout.")
def cycle(contract_path: Path | None, count: int, health_duration: str, interval: str | None,
          startup_timeout: str | None) -> None:
    """Gate 1: N start/stop cycles, healthy throughout, zero zombies, orphans and leftover listeners."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from toolkit.cycle import CycleConfig, run_cycle

    cfg = CycleConfig(contract_path, count, _seconds(health_duration, "--health-duration") or 0.0,
                      _seconds(interval, "--interval"), _seconds(startup_timeout, "--startup-timeout"))
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[checks]}"), TimeElapsedColumn(), console=console,
                  transient=False) as bar:
        task = bar.add_task("cycles", total=count, checks="")

        def progress(kind: str, data: dict[str, Any]) -> None:
            if kind == "cycle":
                bar.update(task, completed=data["cycle"] - 1, description=f"cycle {data['cycle']}/{count}")
            elif kind == "checks":
                bar.update(task, checks=f"checks ok {data['passed']} failed {data['failed']}")
            elif kind == "phase":
                bar.update(task, description=data["phase"])

        result = run_cycle(cfg, progress)
        bar.update(task, completed=result.body["cycles_completed"])
    b = result.body
    console.print(f"cycles {b['cycles_completed']}/{b['cycles_requested']}, checks passed {b['health_checks_passed']}"
                  f" failed {b['health_checks_failed']}, zombies {len(b['zombies'])}, orphans {len(b['orphans'])}, "
                  f"listeners {len(b['leftover_listeners'])}, escalations {len(b['escalations'])}: "
                  f"[bold]{result.verdict}[/]")
    if b["failure"]:
        err_console.print(f"[red]first failure:[/] {escape(b['failure'])}")
    console.print(f"evidence: {result.summary_path}")
    done(result.exit_code)


STATUS_STYLE = {"vulnerable": "[red]VULNERABLE[/]", "clean": "[green]clean[/]",
                "skipped": "[yellow]skipped[/]", "error": "[red]ERROR[/]"}


@cli.command("attack")
@click.argument("attacks", nargs=-1)
@contract_option
@click.option("--all", "run_all", is_flag=True, help="Run every registered attack.")
@click.option("--surface", "surfaces", multiple=True, help="Only this surface (repeatable).")
@click.option("--list", "list_only", is_flag=True, help="List attacks: id, title, CWE, payload classes.")
@click.option("--seed", type=int, default=None, help="Seed for payload choice and mutation (recorded).")
@click.option("--budget", type=click.Choice(["quick", "standard", "deep"]), default="standard", show_default=True)
@click.option("--format", "formats", default="json,sarif,junit,md", show_default=True,
              help="Reports written into the evidence folder: json, sarif, junit, md, html.")
@click.option("--allow-remote", multiple=True, metavar="HOST", help="Allow a non-loopback target host.")
@click.option("--no-start", is_flag=True, help="Attack an already running stack instead of starting it.")
def attack(attacks: tuple[str, ...], contract_path: Path | None, run_all: bool, surfaces: tuple[str, ...],
           list_only: bool, seed: int | None, budget: str, formats: str, allow_remote: tuple[str, ...],
           no_start: bool) -> None:
    """Gate 3: attack every surface with the attack library (ids or families, or --all)."""
    from toolkit.attack import FORMATS, AttackConfig, run_attacks, select
    from toolkit.errors import UsageError

    if list_only:
        _list(select([]))
        done(0)
    if not run_all and not attacks:
        raise UsageError("name attacks (ids or families, see --list) or pass --all")
    fmts = tuple(f.strip() for f in formats.split(",") if f.strip())
    bad = [f for f in fmts if f not in FORMATS]
    if bad:
        raise UsageError(f"--format {','.join(bad)}: use any of {','.join(FORMATS)}")
    cfg = AttackConfig(contract_path, [] if run_all else list(attacks), list(surfaces), seed, budget, fmts,
                       set(allow_remote), not no_start)
    result, cases = run_attacks(cfg)
    _table(cases)
    body = result.body
    console.print(f"{len(body['findings'])} finding(s), {body['payloads_sent']} payloads, seed {body['attack_seed']}, "
                  f"verdict [bold]{result.verdict}[/]; evidence: {result.summary_path}")
    for err in body["errors"]:
        err_console.print(f"[red]error:[/] {escape(err)}")
    done(result.exit_code)


@cli.group("secrets")
def secrets_group() -> None:
    """Gate 3d: hard-coded secrets (detect-secrets, baseline-aware) and bandit static analysis."""


@secrets_group.command("scan")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--contract", "contract_path", type=click.Path(path_type=Path), default=None,
              help="Contract whose [secrets] table gives defaults; evidence goes to its evidence dir.")
@click.option("--baseline", type=click.Path(path_type=Path), default=None, help="detect-secrets baseline file.")
@click.option("--update-baseline", is_flag=True, help="Refresh the baseline, keeping audit labels.")
@click.option("--staged", is_flag=True, help="Scan the files staged in git (pre-commit).")
@click.option("--changed-since", metavar="REV", default=None, help="Scan files changed since REV (CI).")
@click.option("--code", "code", multiple=True, type=click.Path(path_type=Path), help="Code folder for bandit.")
@click.option("--no-bandit", is_flag=True, help="Skip bandit.")
@click.option("--bandit-severity", type=click.Choice(["low", "medium", "high"]), default="high", show_default=True)
@click.option("--bandit-confidence", type=click.Choice(["low", "medium", "high"]), default="medium",
              show_default=True)
@click.option("--format", "formats", default="json,sarif,junit", show_default=True)
@click.option("--output", type=click.Path(path_type=Path), default=None, help="Also write reports here.")
def secrets_scan(paths: tuple[Path, ...], contract_path: Path | None, baseline: Path | None, update_baseline: bool,
                 staged: bool, changed_since: str | None, code: tuple[Path, ...], no_bandit: bool,
                 bandit_severity: str, bandit_confidence: str, formats: str, output: Path | None) -> None:
    """Scan PATHS (default: the contract's [secrets].scan). Exit 0 clean, 1 new secrets, 2 error."""
    from toolkit.errors import UsageError
    from toolkit.secrets_gate import run_secrets_gate
    from toolkit.secrets_scan import ScanConfig

    fmts = tuple(f.strip() for f in formats.split(",") if f.strip())
    if bad := [f for f in fmts if f not in ("json", "sarif", "junit")]:
        raise UsageError(f"--format {','.join(bad)}: use any of json,sarif,junit")
    cfg = ScanConfig(list(paths), baseline, update_baseline, staged, changed_since, list(code),
                     bandit_severity, bandit_confidence, not no_bandit)
    result, where = run_secrets_gate(cfg, contract_path, fmts, output)
    r = result.to_dict()
    console.print(f"{r['files_scanned']} files ({r['bytes_scanned'] / 1e6:.2f} MB) scanned, "
                  f"skipped {sum(r['skipped'].values())} {r['skipped'] or ''}, baseline secrets {r['baseline_secrets']}, "
                  f"canaries found {r['canaries_found']}/{r['canaries_planted']}", markup=False)
    for s in r["new_secrets"]:
        console.print(f"[red]NEW SECRET[/] {escape(s['filename'])}:{s['line_number']} {s['type']} "
                      f"(sha1 {s['hashed_secret'][:12]}…)")
    for b in r["bandit_issues"]:
        console.print(f"[red]BANDIT {b['test_id']}[/] {escape(b['filename'])}:{b['line_number']} "
                      f"{b['severity']}/{b['confidence']}: {escape(b['text'])}")
    for e in r["errors"]:
        err_console.print(f"[red]error:[/] {escape(e)}")
    if update_baseline and baseline:
        console.print(f"baseline updated: {baseline}")
    console.print(f"verdict [bold]{result.verdict}[/]" + (f"; evidence: {where}" if where else ""))
    done({"pass": 0, "fail": 1}.get(result.verdict, 2))


@cli.group("drill", invoke_without_command=True)
@contract_option
@click.option("--fault", "faults", multiple=True, help="kill, hang, corrupt-header, corrupt-page, truncate, bitflip, "
              "torn-wal, delete-wal, clear-state, corrupt-backup (repeatable; default: a seeded combination).")
@click.option("--seed", type=int, default=None, help="Seed for the fault plan and recipes (recorded).")
@click.option("--dry-run", is_flag=True, help="List what would be done and touch nothing.")
@click.option("--warmup", default="3s", show_default=True, help="Sentinel writes and backups before the disaster.")
@click.option("--backup-interval", default="0.5s", show_default=True,
              help="Continuous backup interval (0.5 s keeps RPO under 1 s).")
@click.pass_context
def drill(ctx: click.Context, contract_path: Path | None, faults: tuple[str, ...], seed: int | None, dry_run: bool,
          warmup: str, backup_interval: str) -> None:
    """Gate 4: back up, break (kill, corrupt SQLite, clear state), restore, and measure RPO and RTO."""
    if ctx.invoked_subcommand is not None:
        return
    from toolkit.drill import DrillConfig, plan, run_drill

    cfg = DrillConfig(contract_path, list(faults), seed, dry_run, _seconds(warmup, "--warmup") or 0.0,
                      _seconds(backup_interval, "--backup-interval") or 0.5)
    if dry_run:
        for step in plan(cfg):
            console.print(f"- {escape(step)}")
        done(0)
    result = run_drill(cfg)
    b = result.body
    rpo = "none survived" if b["rpo_s"] is None else f"{b['rpo_s']:.3f} s"
    rto = "not recovered" if b["rto_s"] is None else f"{b['rto_s']:.3f} s"
    console.print(f"faults {', '.join(b['faults'])}: RPO {rpo}, RTO {rto}, "
                  f"{b['lost_writes']} of {b['acknowledged_writes']} acknowledged writes lost, integrity "
                  f"{'ok' if b['integrity_ok'] else 'FAILED'}, healthy {b['healthy']}: [bold]{result.verdict}[/]")
    console.print(f"evidence: {result.summary_path}")
    done(result.exit_code)


@drill.command("history")
@contract_option
@click.option("--html", "html_path", type=click.Path(path_type=Path), default=None,
              help="Also write a self-contained HTML page with RPO/RTO plots here.")
def drill_history(contract_path: Path | None, html_path: Path | None) -> None:
    """Trend table of past drills: RPO, RTO, lost writes, verdict."""
    from toolkit import contract as contract_mod
    from toolkit.drill import read_history
    from toolkit.runner import default_contract_path

    c = contract_mod.load(contract_path or default_contract_path())
    rows = read_history(c)
    if html_path is not None:
        from reports.drill_html import render_history
        from toolkit.evidence import atomic_write

        atomic_write(html_path, render_history(f"Drill history: {c.name} {c.version}", rows).encode())
        console.print(f"report: {html_path}")
    table = Table(title="drill history")
    for col in ("run", "at", "faults", "RPO s", "RTO s", "lost", "verdict"):
        table.add_column(col)
    for run_id, at, faults, rpo, rto, lost, verdict in rows:
        table.add_row(run_id, at, faults, "-" if rpo is None else f"{rpo:.3f}", "-" if rto is None else f"{rto:.3f}", str(lost),
                      "[green]pass[/]" if verdict == "pass" else f"[red]{verdict}[/]")
    console.print(table if rows else "no drills recorded yet")
    done(0)


@cli.command("determinism")
@contract_option
@click.option("--runs", type=int, default=None, help="Runs to compare (default: [determinism].runs, else 2).")
@click.option("--no-stack", is_flag=True, help="Do not start the contract's services around the runs.")
@click.option("--timeout", default="30m", show_default=True, help="Limit for one run.")
def determinism(contract_path: Path | None, runs: int | None, no_stack: bool, timeout: str) -> None:
    """Gate 5: run the contract's test command N times under a locked environment; same outcome per test."""
    from toolkit.determinism import DeterminismConfig, run_determinism

    result = run_determinism(DeterminismConfig(contract_path, runs, not no_stack,
                                               _seconds(timeout, "--timeout") or 1800.0))
    b = result.body
    console.print(f"{b['runs']} runs of {b['tests']} tests: passed {b['pass_counts']}, failed {b['fail_counts']}, "
                  f"diverging {len(b['diverging_tests'])}: [bold]{result.verdict}[/]")
    for name, outcomes in list(b["diverging_tests"].items())[:20]:
        err_console.print(f"[red]non-deterministic[/] {escape(name)}: {' / '.join(outcomes)}")
    console.print(f"evidence: {result.summary_path}")
    done(result.exit_code)


@cli.command("soak")
@contract_option
@click.option("--duration", default=None, help="Scale the contract's [soak].duration down, e.g. 10m.")
@click.option("--warmup", default=None, help="Excluded from the statistics (default: the contract's, at most 1/5).")
@click.option("--window", "--sample-interval", "window", default=None,
              help="Metrics window, one gate2-metrics-minute-NNNN.json each (default: [soak].window, else 60s).")
@click.option("--stuck-after", default=None, help="A request in flight this long is stuck (default: 30s).")
@click.option("--seed", type=int, default=None, help="Seed for the arrival schedule (recorded).")
@click.option("--engine", type=click.Choice(["builtin", "locust"]), default="builtin", show_default=True,
              help="builtin: one process, asyncio + h11; locust: Locust master and --workers workers.")
@click.option("--workers", type=int, default=2, show_default=True, help="Locust workers to start here.")
def soak(contract_path: Path | None, duration: str | None, warmup: str | None, window: str | None,
         stuck_after: str | None, seed: int | None, engine: str, workers: int) -> None:
    """Gate 2: open-model traffic, judged per window; aborts early on a breach, death or stuck request."""
    from toolkit.soak import SoakConfig, run_soak
    from toolkit.soak_cli import report_soak, start_progress

    cfg = SoakConfig(contract_path, _seconds(duration, "--duration"), _seconds(warmup, "--warmup"),
                     _seconds(window, "--window"), seed, _seconds(stuck_after, "--stuck-after"),
                     engine=engine, workers=workers)
    progress = start_progress(console, cfg)
    try:
        result = run_soak(cfg)
    finally:
        progress.stop()
    done(report_soak(console, err_console, result))


@cli.command("gates")
@contract_option
@click.option("--profile", type=click.Choice(["quick", "full"]), default="quick", show_default=True,
              help="quick: scaled-down durations, same logic; full: the seed's (10 x 30 min cycles, the "
                   "contract's soak duration).")
def gates(contract_path: Path | None, profile: str) -> None:
    """Run every gate in order (cycle, soak, attack, secrets, drill, determinism); stop at the first failure."""
    from toolkit.gates import Step, run_all

    def progress(step: Step) -> None:
        style = "green" if step.verdict == "pass" else "red"
        console.print(f"[{style}]{step.gate}: {step.verdict}[/] {escape(step.evidence or step.note)}")

    steps = run_all(contract_path, profile, progress)
    failed = next((s for s in steps if s.verdict != "pass"), None)
    if failed:
        err_console.print(f"stopped at {failed.gate}; fix its root cause and rerun from the start")
        done(failed.exit_code or 1)
    console.print("all gates passed; `toolkit release` can now bundle and sign the evidence")
    done(0)


@cli.group("release", invoke_without_command=True)
@contract_option
@click.option("--key", type=click.Path(path_type=Path), default=None, help="Ed25519 release key (PEM).")
@click.option("--signer", default=None, help="Name and role for the sign-off line.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Output folder (default: evidence dir/release).")
@click.pass_context
def release(ctx: click.Context, contract_path: Path | None, key: Path | None, signer: str | None,
            out: Path | None) -> None:
    """Release ceremony: verified passing evidence of every gate, a reproducible bundle, manifest, signature."""
    if ctx.invoked_subcommand is not None:
        return
    from toolkit.errors import UsageError
    from toolkit.release import GATES, ReleaseBlocked, ceremony, latest
    from toolkit.runner import load_locked

    if key is None or not signer:
        raise UsageError("release needs --key KEY.pem (see `toolkit release keygen`) and --signer \"Name, role\"")
    c = load_locked(contract_path)
    found = [latest(c, gate, label) for gate, _, label in GATES]
    table = Table(title=f"release: {c.name} {c.version}")
    for col in ("gate", "run", "status"):
        table.add_column(col)
    for g in found:
        table.add_row(g.title, g.run.name if g.run else "-", "[green]pass, verified[/]" if g.ok else
                      "[red]" + escape("; ".join(g.problems)) + "[/]")
    console.print(table)
    try:
        result = ceremony(c, out or c.evidence_dir / "release", key, signer, found)
    except ReleaseBlocked as exc:
        err_console.print(f"[red]release blocked[/]: {len(exc.blockers)} blocker(s); no bundle was written")
        done(1)
    console.print(f"bundle sha256 {result['bundle_sha256']}; signed; written to {result['out']}")
    done(0)


@release.command("keygen")
@click.argument("path", type=click.Path(path_type=Path))
def release_keygen(path: Path) -> None:
    """Create an Ed25519 release key (PATH) and its public key (PATH.pub)."""
    from toolkit.release import keygen

    console.print(f"private key {path} (keep it secret), public key {keygen(path)}")
    done(0)


@release.command("verify")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--trust", type=click.Path(path_type=Path), default=None, help="Trusted public key (.pub).")
def release_verify(folder: Path, trust: Path | None) -> None:
    """Check a release folder: manifest hashes and the Ed25519 signature."""
    from toolkit.release import verify_release

    problems = verify_release(folder, trust)
    for p in problems:
        err_console.print(f"[red]{escape(p)}[/]")
    console.print("release verified" if not problems else "release NOT verified")
    done(1 if problems else 0)


def _list(attacks: list[Any]) -> None:
    table = Table(title="attacks")
    for col in ("id", "family", "title", "CWE", "severity", "classes"):
        table.add_column(col)
    for cls in attacks:
        s = cls.spec
        table.add_row(s.id, s.family, s.title, f"CWE-{s.cwe}", s.severity.name.lower(), ", ".join(s.classes))
    console.print(table)


def _table(cases: list[Any]) -> None:
    table = Table(title="attack results")
    for col in ("attack", "surface", "sent", "result", "findings"):
        table.add_column(col, no_wrap=col != "surface")
    for c in cases:
        table.add_row(c.attack_id, c.surface, str(c.sent), STATUS_STYLE.get(c.status, c.status),
                      str(len(c.findings)) if c.findings else "-")
    console.print(table)
