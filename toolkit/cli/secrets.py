"""`toolkit secrets scan`: gate 3d, hard-coded secrets and bandit."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape

from toolkit.cli.app import cli, console, err_console


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
