"""`toolkit release`: the acceptance policy, the signed bundle, keygen and verify."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from toolkit.cli.app import cli, console, contract_option, err_console

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
