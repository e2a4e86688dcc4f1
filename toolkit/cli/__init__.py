"""The `toolkit` command: a thin shell that parses, calls the core and returns an exit code.

Exit codes: 0 pass, 1 a gate failed or findings were made, 2 tool, contract or usage error.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from toolkit import __version__
from toolkit.core import contract as contract_mod
from toolkit.core.errors import ToolkitError
from toolkit.core.runner import default_contract_path, load_locked

if TYPE_CHECKING:
    from toolkit.core.ledger import Ledger

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

contract_option = click.option(
    "--contract", "-c", "contract_path", type=click.Path(path_type=Path), default=None,
    help="Boot contract (TOML). Default: $TOOLKIT_CONTRACT or contracts/boot_contract.toml.")


class ExitCode(Exception):
    def __init__(self, code: int):
        self.code = code


def done(code: int) -> None:
    raise ExitCode(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="toolkit")
@click.option("--runner-key", type=click.Path(path_type=Path), default=None,
              help="Ed25519 key that signs runs and ledger entries (default: "
                   "$TOOLKIT_RUNNER_KEY, else ~/.config/release-gate-toolkit/runner-key.pem; "
                   "created 0600 on first use).")
def cli(runner_key: Path | None) -> None:
    """Release gates for multi-service systems, with evidence that cannot be faked.

    Gates: cycle (1), soak (2), attack and secrets (3), drill (4), determinism (5);
    then release. Everything the toolkit knows about a system comes from its boot contract.
    """
    if runner_key is not None:
        from toolkit.core.signing import KEY_ENV

        os.environ[KEY_ENV] = str(runner_key.absolute())


# ------------------------------------------------------------------ contract

@cli.group("contract")
def contract_group() -> None:
    """Validate, lock and check the boot contract for drift."""


@contract_group.command("check")
@contract_option
def contract_check(contract_path: Path | None) -> None:
    """Validate the contract and print what it declares."""
    c = contract_mod.load(contract_path or default_contract_path())
    console.print(f"{c.path}: valid ({c.name} {c.version}), {len(c.services)} services, "
                  f"{len(c.surfaces)} surfaces, sections: {', '.join(sorted(c.raw))}")
    done(0)


@contract_group.command("lock")
@contract_option
def contract_lock(contract_path: Path | None) -> None:
    """Write <contract>.lock pinning name, version and SHA-256."""
    c = contract_mod.load(contract_path or default_contract_path())
    status = contract_mod.check_lock(c)
    if status.state == "drift":
        err_console.print(f"{status.message}\nrefusing to re-lock a changed contract under the same version",
                          markup=False)
        done(1)
    target = contract_mod.write_lock(c)
    console.print(f"locked {c.name} {c.version} sha256 {c.sha256} -> {target}")
    done(0)


@contract_group.command("verify")
@contract_option
def contract_verify(contract_path: Path | None) -> None:
    """Exit 1 on drift: the contract changed but its version did not."""
    c = contract_mod.load(contract_path or default_contract_path())
    status = contract_mod.check_lock(c)
    (console if status.state == "ok" else err_console).print(status.message, markup=False)
    done(0 if status.state == "ok" else 1)


@contract_group.command("init", context_settings={"ignore_unknown_options": True})
@click.option("--mcp-stdio", "mcp_stdio", is_flag=True, required=True,
              help="The target is an MCP server over stdio, started by the command after --.")
@click.option("--sandbox", type=click.Path(path_type=Path), required=True,
              help="The folder the server must confine its tools to (created if missing).")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Contract file to write (and lock).")
@click.option("--timeout", type=float, default=60.0, show_default=True, help="Seconds to wait for the server.")
@click.option("--env", "env_pairs", multiple=True, metavar="NAME=VALUE",
              help="Environment for the server, also written into each surface (repeatable).")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def contract_init(mcp_stdio: bool, sandbox: Path, out: Path, timeout: float, env_pairs: tuple[str, ...],
                  command: tuple[str, ...]) -> None:
    """Write a locked contract from an MCP server's own tool listing: one surface per attackable argument."""
    from toolkit.core.errors import UsageError
    from toolkit.core.mcp_init import init

    bad = [e for e in env_pairs if "=" not in e or not e.split("=", 1)[0]]
    if bad:
        raise UsageError(f"--env {bad[0]!r}: write NAME=VALUE")
    env = dict(e.split("=", 1) for e in env_pairs)
    plan = init(list(command), sandbox, out, timeout, env)
    for s in plan.surfaces:
        console.print(f"  {s.name}: {s.cls}{' (repository)' if s.repository else ''}"
                      f"{' (writes)' if s.writes else ''}", markup=False)
    console.print(f"{out}: {len(plan.surfaces)} surfaces from {plan.server!r} "
                  f"({len(plan.skipped)} tools with nothing to attack), locked", markup=False)
    done(0)


# ------------------------------------------------------------------ stack

@cli.group("stack")
def stack_group() -> None:
    """Run the contract's services by hand: up (foreground), status, down."""


@stack_group.command("up")
@contract_option
@click.option("--for", "seconds", type=float, default=None, help="Stop by itself after this many seconds.")
def stack_up(contract_path: Path | None, seconds: float | None) -> None:
    """Start every service in depends_on order; Ctrl-C stops them all cleanly."""
    from toolkit.core import stack

    done(stack.up(load_locked(contract_path), console, max_seconds=seconds))


@stack_group.command("status")
@contract_option
def stack_status(contract_path: Path | None) -> None:
    """Probe every service's health."""
    from toolkit.core import stack

    done(stack.status(contract_mod.load(contract_path or default_contract_path()), console))


@stack_group.command("down")
@contract_option
def stack_down(contract_path: Path | None) -> None:
    """Stop a stack started by `toolkit stack up` elsewhere."""
    from toolkit.core import stack

    done(stack.down(contract_mod.load(contract_path or default_contract_path()), console))


# ------------------------------------------------------------------ preflight, verify

@cli.command("preflight")
@contract_option
def preflight(contract_path: Path | None) -> None:
    """Check Python, dependencies, free ports, writable folders and the deterministic env."""
    from toolkit.gates.preflight import run_checks

    c = contract_mod.load(contract_path or default_contract_path())
    checks = run_checks(c)
    lock = contract_mod.check_lock(c)
    table = Table(title=f"preflight: {c.name} {c.version}")
    for col in ("check", "result", "detail"):
        table.add_column(col)
    for chk in checks:
        table.add_row(chk.name, "[green]ok[/]" if chk.ok else "[red]FAIL[/]", chk.detail)
    table.add_row("contract lock", "[green]ok[/]" if lock.state == "ok" else "[red]FAIL[/]", lock.message)
    console.print(table)
    done(0 if all(x.ok for x in checks) and lock.state == "ok" else 1)


@cli.command("verify")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--trust", "trust", multiple=True, type=click.Path(path_type=Path),
              help="Trusted runner keys (lines 'ed25519 <hex>'); default: $TOOLKIT_TRUSTED_KEYS or "
                   "the trust file beside the runner key, plus the runner key itself.")
@click.option("--quarantine", "do_quarantine", is_flag=True,
              help="Move runs that fail to <evidence>/invalidated/, with the reason in the ledger.")
def verify(path: Path, trust: tuple[Path, ...], do_quarantine: bool) -> None:
    """Check signatures, manifests, journal chains and the gate ledger; exit 1 on any problem."""
    from toolkit.core import signing
    from toolkit.core.evidence import verify_run

    if not path.exists():
        raise ToolkitError(f"{path}: no such file or folder; pass an evidence run folder")
    keys = signing.trusted_keys(list(trust))
    if not keys:
        raise ToolkitError("no trusted runner key: pass --trust FILE (lines 'ed25519 <hex>') or "
                           f"set ${signing.TRUST_ENV}; a signature is never checked against itself")
    ledger, runs = _verify_scope(path)
    if not runs and ledger is None:
        raise ToolkitError(f"{path}: no evidence run found (no manifest.sha256 or journal.jsonl below it)")
    bad = 0
    for run in runs:
        problems = verify_run(run, keys)
        bad += bool(problems)
        _report_run(run, problems)
        if problems and do_quarantine and ledger is not None:
            from toolkit.core.ledger import quarantine

            target = quarantine(ledger, run, f"fails verify: {problems[0]}")
            err_console.print(f"  quarantined -> {target}")
    bad += _verify_ledger(ledger, runs, keys)
    done(1 if bad else 0)


def _verify_scope(path: Path) -> tuple[Ledger | None, list[Path]]:
    from toolkit.core.evidence import find_runs
    from toolkit.core.ledger import INVALIDATED, LEDGER, Ledger

    folders = [path.absolute(), *path.absolute().parents]
    ledger = next((Ledger(f) for f in folders if (f / LEDGER).is_file()), None)
    runs = set(find_runs(path))
    if ledger is not None and path.absolute() == ledger.root.absolute():
        runs |= {r for g in ledger.root.iterdir() if g.is_dir() and g.name != INVALIDATED
                 for r in g.iterdir() if r.is_dir() and g.name in _GATE_DIRS}
    keep = [r for r in runs if ledger is None or INVALIDATED not in r.absolute().relative_to(
        ledger.root.absolute()).parts]
    return ledger, sorted(keep)


_GATE_DIRS = ("cycle", "soak", "attack", "secrets", "drill", "determinism")


def _report_run(run: Path, problems: list[str]) -> None:
    if problems:
        err_console.print(f"[red]TAMPERED[/] {escape(str(run))}")
        for p in problems:
            err_console.print(f"  {escape(p)}")
    else:
        console.print(f"[green]ok[/] {escape(str(run))}")


def _verify_ledger(ledger: Ledger | None, runs: list[Path], keys: list[object]) -> int:
    from toolkit.core.ledger import check_runs, unknown_runs

    if ledger is None:
        return 0
    problems = check_runs(ledger, keys, deep=False)  # each run was verified above
    problems += [f"not in the ledger (copied or hand-written): {r.parent.name}/{r.name}"
                 for r in unknown_runs(ledger, runs)]
    for p in problems:
        err_console.print(f"[red]LEDGER[/] {escape(p)}")
    if not problems:
        attempts = len(ledger.attempts())
        console.print(f"[green]ok[/] ledger {escape(str(ledger.path))}: {attempts} attempts")
    return len(problems)


def _register_gates() -> None:
    """Gate commands live in their own modules; importing them adds them to the group."""
    from toolkit.cli import gates as cli_gates  # noqa: F401


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code instead of exiting, so tests can call it in-process."""
    _register_gates()
    try:
        cli.main(args=argv, prog_name="toolkit", standalone_mode=False)
    except ExitCode as exc:
        return exc.code
    except ToolkitError as exc:
        err_console.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return 2
    except click.exceptions.Abort:
        err_console.print("interrupted")
        return 130
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    except Exception as exc:  # a bug in the toolkit: still one paragraph and exit 2, no traceback
        err_console.print(f"[red]internal error:[/] {type(exc).__name__}: {escape(str(exc))}. This is a toolkit bug; "
                          "rerun with TOOLKIT_DEBUG=1 for the traceback and report it.")
        if os.environ.get("TOOLKIT_DEBUG"):
            raise
        return 2
    return 0

