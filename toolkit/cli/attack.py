"""`toolkit attack`: gate 3, the attack library against every surface."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from toolkit.cli.app import cli, console, contract_option, err_console
from toolkit.core.events import Bus

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
@click.option("--time-budget", type=float, default=None, metavar="S",
              help="Share S seconds out between the cases; each sends its most telling payloads "
                   "first (default 90 for quick/standard, none for deep; 0: none).")
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
    time_budget: float | None = None,
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
    if time_budget is not None and time_budget < 0:
        raise UsageError(f"--time-budget {time_budget:g}: give seconds, or 0 for none")
    if time_budget is None:
        time_budget = None if budget == "deep" else DEFAULT_TIME_BUDGET_S
    cfg = AttackConfig(contract_path, selection, list(surfaces), seed, budget, fmts,
                       set(allow_remote), not no_start, rate_limit=rate_limit,
                       concurrency=concurrency, time_budget_s=time_budget or None)
    result, cases = run_attacks(cfg, [_jsonl_subscriber] if jsonl else [])
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


DEFAULT_TIME_BUDGET_S = 90.0


def _echo_json(doc: Any) -> None:
    import json

    click.echo(json.dumps(doc, sort_keys=True, default=str))


def _jsonl_subscriber(bus: Bus) -> None:
    """``--jsonl``: each grouped finding and each finished case as one JSON line on stdout."""
    from toolkit.core.events import CaseFinished, FindingMade

    bus.on(FindingMade, lambda event: _echo_json({"type": "finding", **event.payload()}))
    bus.on(CaseFinished, lambda event: _echo_json({"type": "case", **event.payload()}))


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
        sent = f"{c.sent} ({c.unanswered} no reply)" if c.unanswered else str(c.sent)
        table.add_row(c.attack_id, escape(c.surface), sent,
                      STATUS_STYLE.get(c.status, c.status), found)
    out.print(table)
    for c in cases:  # every skip and error says why, one unwrapped line each
        if c.status in ("skipped", "error"):
            why = "; ".join(c.notes) or f"no payload of {c.attack_id} applies here (0 sent)"
            out.print(f"{c.status} {c.attack_id} on {escape(c.surface)}: {escape(why)}",
                      soft_wrap=True)
