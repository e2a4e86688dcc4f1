"""Gate commands that have landed: cycle and attack."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from toolkit.cli.app import cli, console, contract_option, err_console


def _seconds(value: str | None, name: str) -> float | None:
    from toolkit.core.errors import UsageError
    from toolkit.core.schema import parse_duration

    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise UsageError(f"{name} {value!r}: {exc}") from None


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

    from toolkit.gates.cycle import CycleConfig, cycle_strength, run_cycle

    full = cycle_strength(contract_path)
    count = count if count is not None else full.count
    health = _seconds(health_duration, "--health-duration") if health_duration else None
    every = _seconds(interval, "--interval") if interval else None
    startup = _seconds(startup_timeout, "--startup-timeout") if startup_timeout else None
    cfg = CycleConfig(contract_path, count, full.health_s if health is None else health,
                      every or full.interval_s, startup or full.startup_s)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[checks]}"), TimeElapsedColumn(), console=console,
                  transient=False) as bar:
        task = bar.add_task("cycles", total=count, checks="")

        def progress(kind: str, data: dict[str, Any]) -> None:
            if kind == "cycle":
                bar.update(
                    task, completed=data["cycle"] - 1, description=f"cycle {data['cycle']}/{count}"
                )
            elif kind == "checks":
                bar.update(task, checks=f"checks ok {data['passed']} failed {data['failed']}")
            elif kind == "phase":
                bar.update(task, description=data["phase"])

        result = run_cycle(cfg, progress)
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


STATUS_STYLE = {"vulnerable": "[red]VULNERABLE[/]", "clean": "[green]clean[/]",
                "skipped": "[yellow]skipped[/]", "error": "[red]ERROR[/]"}


@cli.command("attack")
@click.argument("attacks", nargs=-1)
@contract_option
@click.option("--all", "run_all", is_flag=True, help="Run every registered attack.")
@click.option("--surface", "surfaces", multiple=True, help="Only this surface (repeatable).")
@click.option(
    "--list", "list_only", is_flag=True, help="List attacks: id, title, CWE, payload classes."
)
@click.option(
    "--seed", type=int, default=None, help="Seed for payload choice and mutation (recorded)."
)
@click.option(
    "--budget",
    type=click.Choice(["quick", "standard", "deep"]),
    default="standard",
    show_default=True,
)
@click.option("--format", "formats", default="json,sarif,junit,md", show_default=True,
              help="Reports written into the evidence folder: json, sarif, junit, md, html.")
@click.option(
    "--allow-remote", multiple=True, metavar="HOST", help="Allow a non-loopback target host."
)
@click.option(
    "--no-start", is_flag=True, help="Attack an already running stack instead of starting it."
)
@click.option("--severity", "severities", default=None, metavar="LIST",
              help="Only attacks of these severities, e.g. high,critical.")
@click.option("--id", "ids", multiple=True, metavar="ID",
              help="Only these attack ids (repeatable, or a,b).")
@click.option("--exclude-id", "exclude_ids", multiple=True, metavar="ID",
              help="Leave these attack ids out.")
@click.option("--rate-limit", type=float, default=None, metavar="N",
              help="At most N payloads per second.")
@click.option("--concurrency", type=int, default=1, show_default=True,
              help="Surfaces attacked in parallel.")
@click.option("--jsonl", is_flag=True,
              help="JSON lines on stdout (findings, cases, summary); tables to stderr.")
@click.option("--json", "as_json", is_flag=True, help="With --list: print the list as JSON.")
def attack(
    attacks: tuple[str, ...],
    contract_path: Path | None,
    run_all: bool,
    surfaces: tuple[str, ...],
    list_only: bool,
    seed: int | None,
    budget: str,
    formats: str,
    allow_remote: tuple[str, ...],
    no_start: bool,
    severities: str | None = None,
    ids: tuple[str, ...] = (),
    exclude_ids: tuple[str, ...] = (),
    rate_limit: float | None = None,
    concurrency: int = 1,
    jsonl: bool = False,
    as_json: bool = False,
) -> int:
    """Gate 3: attack every surface with the attack library (ids or families, or --all)."""
    from toolkit.core.errors import UsageError
    from toolkit.gates.attack import FORMATS, AttackConfig, run_attacks

    chosen = _filtered(attacks, run_all or list_only, severities, ids, exclude_ids)
    if list_only:
        _list(chosen, as_json)
        return 0
    fmts = tuple(f.strip() for f in formats.split(",") if f.strip())
    bad = [f for f in fmts if f not in FORMATS]
    if bad:
        raise UsageError(f"--format {','.join(bad)}: use any of {','.join(FORMATS)}")
    if rate_limit is not None and rate_limit <= 0:
        raise UsageError(f"--rate-limit {rate_limit:g}: give a positive number of payloads "
                         "per second")
    if not 1 <= concurrency <= 64:
        raise UsageError(f"--concurrency {concurrency}: use 1 to 64")
    narrowed = bool(severities or ids or exclude_ids)
    selection = [c.spec.id for c in chosen] if narrowed else ([] if run_all else list(attacks))
    cfg = AttackConfig(contract_path, selection, list(surfaces), seed, budget, fmts,
                       set(allow_remote), not no_start, rate_limit=rate_limit,
                       concurrency=concurrency)
    result, cases = run_attacks(cfg, _jsonl_subscriber if jsonl else None)
    out = err_console if jsonl else console
    _table(cases, out)
    body = result.body
    out.print(f"{len(body['findings'])} finding(s), {body['payloads_sent']} payloads, "
              f"seed {body['attack_seed']}, verdict [bold]{result.verdict}[/]; "
              f"evidence: {escape(str(result.summary_path))}", soft_wrap=True)
    if body.get("pacing"):
        from reports.writers import pacing_line

        out.print(escape(pacing_line({"pacing": body["pacing"]})), soft_wrap=True)
    for err in body["errors"]:
        err_console.print(f"[red]error:[/] {escape(err)}", soft_wrap=True)
    if jsonl:
        _echo_json({"type": "summary", "verdict": result.verdict, "findings": len(body["findings"]),
                    "payloads_sent": body["payloads_sent"], "seed": body["attack_seed"],
                    "errors": body["errors"], "evidence": str(result.summary_path)})
    return result.exit_code


@cli.group("secrets")
def secrets_group() -> None:
    """Gate 3d: hard-coded secrets (detect-secrets, baseline-aware) and bandit static analysis."""


@secrets_group.command("scan")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--contract",
    "contract_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Contract whose [secrets] table gives defaults; evidence goes to its evidence dir.",
)
@click.option(
    "--baseline",
    type=click.Path(path_type=Path),
    default=None,
    help="detect-secrets baseline file.",
)
@click.option("--update-baseline", is_flag=True, help="Refresh the baseline, keeping audit labels.")
@click.option("--staged", is_flag=True, help="Scan the files staged in git (pre-commit).")
@click.option(
    "--changed-since", metavar="REV", default=None, help="Scan files changed since REV (CI)."
)
@click.option(
    "--code", "code", multiple=True, type=click.Path(path_type=Path), help="Code folder for bandit."
)
@click.option("--no-bandit", is_flag=True, help="Skip bandit.")
@click.option(
    "--bandit-severity",
    type=click.Choice(["low", "medium", "high"]),
    default="high",
    show_default=True,
)
@click.option("--bandit-confidence", type=click.Choice(["low", "medium", "high"]), default="medium",
              show_default=True)
@click.option("--format", "formats", default="json,sarif,junit", show_default=True,
              help="Reports: json, sarif, junit, md, html.")
@click.option(
    "--output", type=click.Path(path_type=Path), default=None, help="Also write reports here."
)
@click.option("--exclude-files", multiple=True, metavar="REGEX",
              help="Skip files whose relative path matches (repeatable; as detect-secrets).")
@click.option("--exclude-lines", multiple=True, metavar="REGEX",
              help="Ignore secrets on lines that match (repeatable; as detect-secrets).")
def secrets_scan(
    paths: tuple[Path, ...],
    contract_path: Path | None,
    baseline: Path | None,
    update_baseline: bool,
    staged: bool,
    changed_since: str | None,
    code: tuple[Path, ...],
    no_bandit: bool,
    bandit_severity: str,
    bandit_confidence: str,
    formats: str,
    output: Path | None,
    exclude_files: tuple[str, ...] = (),
    exclude_lines: tuple[str, ...] = (),
) -> int:
    """Scan PATHS (default: the contract's [secrets].scan). Exit 0 clean, 1 new secrets, 2 error."""
    from reports.secrets import SECRETS_FORMATS
    from toolkit.core.errors import UsageError
    from toolkit.gates.secrets_gate import run_secrets_gate
    from toolkit.gates.secrets_scan import ScanConfig

    fmts = tuple(f.strip() for f in formats.split(",") if f.strip())
    if bad := [f for f in fmts if f not in SECRETS_FORMATS]:
        raise UsageError(f"--format {','.join(bad)}: use any of {','.join(SECRETS_FORMATS)}")
    cfg = ScanConfig(list(paths), baseline, update_baseline, staged, changed_since, list(code),
                     bandit_severity, bandit_confidence, not no_bandit,
                     exclude_files=list(exclude_files), exclude_lines=list(exclude_lines))
    result, where = run_secrets_gate(cfg, contract_path, fmts, output)
    r = result.to_dict()
    skipped = ", ".join(f"{k} {v}" for k, v in sorted(r["skipped"].items()))
    console.print(f"{r['files_scanned']} files ({r['bytes_scanned'] / 1e6:.2f} MB) scanned, "
                  f"skipped {sum(r['skipped'].values())}{f' ({skipped})' if skipped else ''}, "
                  f"excluded {r['excluded']}, baseline secrets {r['baseline_secrets']}, "
                  f"canaries found {r['canaries_found']}/{r['canaries_planted']}", markup=False)
    for s in r["new_secrets"]:  # one finding per line, never wrapped: CI logs are grepped
        console.print(f"[red]NEW SECRET[/] {escape(s['filename'])}:{s['line_number']} {s['type']} "
                      f"(sha1 {s['hashed_secret'][:12]}…)", soft_wrap=True)
    for b in r["bandit_issues"]:
        console.print(f"[red]BANDIT {b['test_id']}[/] {escape(b['filename'])}:{b['line_number']} "
                      f"{b['severity']}/{b['confidence']}: {escape(b['text'])}", soft_wrap=True)
    for e in r["errors"]:
        err_console.print(f"[red]error:[/] {escape(e)}", soft_wrap=True)
    for note in r["notes"]:
        console.print(escape(note), soft_wrap=True)
    tail = f"; evidence: {escape(str(where))}" if where else ""
    console.print(f"verdict [bold]{result.verdict}[/]{tail}", soft_wrap=True)
    return {"pass": 0, "fail": 1}.get(result.verdict, 2)


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
    from toolkit.gates.drill import DrillConfig, check_faults, draw_seed, plan, run_drill

    check_faults(list(faults))
    seed = draw_seed() if seed is None else seed  # drawn once: printed, planned with, recorded
    cfg = DrillConfig(
        contract_path,
        list(faults),
        seed,
        dry_run,
        _seconds(warmup, "--warmup") or 0.0,
        _seconds(backup_interval, "--backup-interval") or 0.5,
    )
    if dry_run:
        for step in plan(cfg):
            console.print(f"- {escape(step)}")
        return 0
    console.print(f"drill seed {seed} (rerun with --seed {seed})")
    result = run_drill(cfg)
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

    from toolkit.core import contract as contract_mod
    from toolkit.core.runner import default_contract_path
    from toolkit.gates.drill import read_history

    c = contract_mod.load(contract_path or default_contract_path())
    rows = read_history(c)
    if html_path is not None:
        from reports.drill_html import render_history
        from toolkit.core.evidence import atomic_write

        atomic_write(
            html_path, render_history(f"Drill history: {c.name} {c.version}", rows).encode()
        )
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
                                               _seconds(timeout, "--timeout") or 1800.0))
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
    from toolkit.cli.soak import report_soak, start_progress
    from toolkit.gates.soak import SoakConfig, run_soak

    cfg = SoakConfig(contract_path, _seconds(duration, "--duration"), _seconds(warmup, "--warmup"),
                     _seconds(window, "--window"), seed, _seconds(stuck_after, "--stuck-after"),
                     engine=engine, workers=workers)
    progress = start_progress(console, cfg)
    try:
        result = run_soak(cfg)
    finally:
        progress.stop()
    return report_soak(console, err_console, result)


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


trust_option = click.option("--trust", "trust", multiple=True, type=click.Path(path_type=Path),
                            help="Trusted runner keys (lines 'ed25519 <hex>'); default: "
                                 "$TOOLKIT_TRUSTED_KEYS or the trust file beside the runner key, "
                                 "plus the runner key itself.")


@cli.group("release", invoke_without_command=True)
@contract_option
@click.option(
    "--key", type=click.Path(path_type=Path), default=None, help="Ed25519 release key (PEM)."
)
@click.option("--signer", default=None, help="\"Name, role\" for the sign-off.")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Output folder (default: evidence dir/release).",
)
@click.option("--rehearsal", is_flag=True,
              help="Bundle what there is, marked REHEARSAL - NOT FOR GA.")
@trust_option
@click.pass_context
def release(ctx: click.Context, contract_path: Path | None, key: Path | None, signer: str | None,
            out: Path | None, rehearsal: bool, trust: tuple[Path, ...]) -> int:
    """Release ceremony: the acceptance policy, then a numbered, signed candidate or rehearsal."""
    if ctx.invoked_subcommand is not None:
        return 0  # main returns the subcommand's code
    from toolkit.core import signing
    from toolkit.core.errors import UsageError
    from toolkit.core.runner import load_locked
    from toolkit.gates.release import ReleaseBlocked, assess, ceremony, parse_signer

    if key is None or not signer:
        raise UsageError(
            'release needs --key KEY.pem (see `toolkit release keygen`) and --signer "Name, role"'
        )
    parse_signer(signer)
    c = load_locked(contract_path)
    assessment = assess(c, signing.trusted_keys(list(trust)))
    _release_table(c, assessment)
    try:
        result = ceremony(c, out or c.evidence_dir / "release", key, signer, assessment, rehearsal)
    except ReleaseBlocked as exc:
        for reason in exc.blockers:
            err_console.print(f"[red]blocker:[/] {escape(reason)}")
        hint = "" if rehearsal else "; `--rehearsal` bundles it marked NOT FOR GA"
        err_console.print(f"[red]release blocked[/]: {len(exc.blockers)} reason(s); "
                          f"no bundle was written{hint}")
        return 1
    rc = f"release candidate {result['candidate']}"
    kind = "REHEARSAL - NOT FOR GA" if result["rehearsal"] else rc
    console.print(f"{kind}: bundle sha256 {result['bundle_sha256']}; signed; "
                  f"written to {result['out']}")
    return 0


def _release_table(c: Any, assessment: Any) -> None:
    table = Table(title=f"release: {c.name} {c.version}")
    for col in ("gate", "run", "status"):
        table.add_column(col, no_wrap=col == "run")  # run ids never truncated
    for g in assessment.gates:
        status = "[green]pass, verified, full strength[/]" if g.ok else \
            "[red]" + escape("; ".join(g.problems + g.shortfalls)) + "[/]"
        table.add_row(g.title, g.run.name if g.run else "-", status)
    console.print(table)
    for p in assessment.integrity:
        err_console.print(f"[red]integrity:[/] {escape(p)}")


@release.command("keygen")
@click.argument("path", type=click.Path(path_type=Path))
def release_keygen(path: Path) -> int:
    """Create an Ed25519 release key (PATH) and its public key (PATH.pub, a trust-file line)."""
    from toolkit.gates.release import keygen

    console.print(f"private key {path} (keep it secret), public key {keygen(path)}")
    return 0


@release.command("verify")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--trust", "trust", multiple=True, type=click.Path(path_type=Path),
              help="Trusted release public key (.pub); required (or $TOOLKIT_RELEASE_TRUST).")
def release_verify(folder: Path, trust: tuple[Path, ...]) -> int:
    """Check a candidate folder: every file signed and unchanged, signed by a trusted key."""
    from toolkit.gates.release import NOT_FOR_GA, verify_release

    problems, pred = verify_release(folder, list(trust))
    for p in problems:
        err_console.print(f"[red]{escape(p)}[/]")
    if problems:
        console.print("release NOT verified")
        return 1
    rc = f"release candidate {pred.get('candidate')} approved"
    what = NOT_FOR_GA if pred.get("rehearsal") else rc
    console.print(f"release verified: {what}, {pred.get('signer')} ({pred.get('role')}), "
                  f"{pred.get('timestamp')}, bundle sha256 {pred.get('bundle_sha256')}")
    return 0


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


def _num(value: Any) -> str:
    """Measured floats for people: 4 significant digits, never 0.30000000000000004."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _echo_json(doc: Any) -> None:
    import json

    click.echo(json.dumps(doc, sort_keys=True, default=str))


def _jsonl_subscriber(run: Any) -> None:
    """``--jsonl``: each grouped finding and each finished case as one JSON line on stdout."""
    def handle(event: Any) -> None:
        if event.kind == "finding":
            _echo_json({"type": "finding", **event.data})
        elif event.kind == "attack.case":
            _echo_json({"type": "case", **event.data})

    run.bus.subscribe(handle)


def _filtered(names: tuple[str, ...], everything: bool, severities: str | None,
              ids: tuple[str, ...], exclude_ids: tuple[str, ...]) -> list[Any]:
    """nuclei-style selection: names or --all, then --id, --exclude-id and --severity."""
    from toolkit.core.errors import UsageError
    from toolkit.core.model import Severity
    from toolkit.gates.attack import select

    only, drop = _split(ids), _split(exclude_ids)
    levels = _split([severities] if severities else [])
    if bad := levels - {s.name.lower() for s in Severity}:
        raise UsageError(f"--severity {','.join(sorted(bad))}: use info, low, medium, high "
                         "or critical")
    if not (everything or names or only):
        raise UsageError("name attacks (ids or families, see --list), pass --id ID, or pass --all")
    chosen = select([] if everything or not names else list(names))
    known = {c.spec.id for c in select([])}
    if unknown := (only | drop) - known:
        raise UsageError(f"unknown attack id {', '.join(sorted(unknown))} "
                         "(see toolkit attack --list)")
    chosen = [c for c in chosen if (not only or c.spec.id in only) and c.spec.id not in drop
              and (not levels or c.spec.severity.name.lower() in levels)]
    if not chosen:
        raise UsageError("the filters left no attack to run; loosen --id, --exclude-id "
                         "or --severity")
    return chosen


def _split(items: Any) -> set[str]:
    return {p.strip() for item in items for p in item.split(",") if p.strip()}


def _list(attacks: list[Any], as_json: bool = False) -> None:
    if as_json:
        _echo_json([{"id": c.spec.id, "family": c.spec.family, "title": c.spec.title,
                     "cwe": c.spec.cwe, "severity": c.spec.severity.name.lower(),
                     "classes": list(c.spec.classes)} for c in attacks])
        return
    table = Table(title="attacks", box=None, pad_edge=False, header_style="bold")
    for col in ("id", "severity", "CWE", "family", "title"):
        wrap = col == "title"
        table.add_column(col, no_wrap=not wrap, overflow="fold" if wrap else "ellipsis")
    for cls in attacks:
        s = cls.spec
        table.add_row(s.id, s.severity.name.lower(), f"CWE-{s.cwe}", s.family,
                      f"{escape(s.title)}\n[dim]classes: {', '.join(s.classes)}[/]")
    console.print(table)


def _table(cases: list[Any], out: Any = None) -> None:
    out = out or console
    table = Table(title="attack results", box=None, pad_edge=False, header_style="bold")
    for col in ("attack", "surface", "sent", "result", "findings"):
        table.add_column(col, no_wrap=col != "surface", overflow="fold")
    for c in cases:
        found = str(len(c.findings)) if c.findings else "-"
        table.add_row(c.attack_id, escape(c.surface), str(c.sent),
                      STATUS_STYLE.get(c.status, c.status), found)
    out.print(table)
    for c in cases:  # every skip and error says why, one unwrapped line each
        if c.status in ("skipped", "error"):
            why = "; ".join(c.notes) or f"no payload of {c.attack_id} applies here (0 sent)"
            out.print(f"{c.status} {c.attack_id} on {escape(c.surface)}: {escape(why)}",
                      soft_wrap=True)
