"""`toolkit contract`: validate, lock, verify and initialise the boot contract."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from toolkit.cli.app import cli, console, contract_option, err_console
from toolkit.core import contract as contract_mod
from toolkit.core.runner import default_contract_path


@cli.group("contract")
def contract_group() -> None:
    """Validate, lock and check the boot contract for drift."""


@contract_group.command("check")
@contract_option
def contract_check(contract_path: Path | None) -> int:
    """Validate the contract and print what it declares."""
    c = contract_mod.load(contract_path or default_contract_path())
    console.print(f"{c.path}: valid ({c.name} {c.version}), {len(c.services)} services, "
                  f"{len(c.surfaces)} surfaces, sections: {', '.join(sorted(c.raw))}")
    return 0


@contract_group.command("lock")
@contract_option
def contract_lock(contract_path: Path | None) -> int:
    """Write <contract>.lock pinning name, version and SHA-256."""
    c = contract_mod.load(contract_path or default_contract_path())
    status = contract_mod.check_lock(c)
    if status.state == "drift":
        err_console.print(
            f"{status.message}\nrefusing to re-lock a changed contract under the same version",
            markup=False,
        )
        return 1
    target = contract_mod.write_lock(c)
    console.print(f"locked {c.name} {c.version} sha256 {c.sha256} -> {target}")
    return 0


@contract_group.command("verify")
@contract_option
def contract_verify(contract_path: Path | None) -> int:
    """Exit 1 on drift: the contract changed but its version did not."""
    c = contract_mod.load(contract_path or default_contract_path())
    status = contract_mod.check_lock(c)
    (console if status.state == "ok" else err_console).print(status.message, markup=False)
    return 0 if status.state == "ok" else 1


@contract_group.command("init", context_settings={"ignore_unknown_options": True})
@click.option("--mcp-stdio", "mcp_stdio", is_flag=True, required=True,
              help="The target is an MCP server over stdio, started by the command after --.")
@click.option("--sandbox", type=click.Path(path_type=Path), required=True,
              help="The folder the server must confine its tools to (created if missing).")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="Contract file to write (and lock).",
)
@click.option(
    "--timeout", type=float, default=60.0, show_default=True, help="Seconds to wait for the server."
)
@click.option("--env", "env_pairs", multiple=True, metavar="NAME=VALUE",
              help="Environment for the server, also written into each surface (repeatable).")
@click.option("--keep-unverified", is_flag=True,
              help="Write every candidate surface, without probing for a harmless call first.")
@click.option("--probe-budget", type=float, default=90.0, show_default=True,
              help="Seconds for probing every candidate surface's harmless baseline.")
@click.option("--call-timeout", type=float, default=10.0, show_default=True,
              help="Seconds one probing tool call may take (a start-up gets 15 s at least).")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def contract_init(
    mcp_stdio: bool,
    sandbox: Path,
    out: Path,
    timeout: float,
    env_pairs: tuple[str, ...],
    keep_unverified: bool,
    probe_budget: float,
    call_timeout: float,
    command: tuple[str, ...],
) -> int:
    """Write a locked contract from an MCP server's own tool listing: one surface per attackable
    argument.
    """
    from toolkit.core.errors import UsageError
    from toolkit.core.mcp_init import init

    bad = [e for e in env_pairs if "=" not in e or not e.split("=", 1)[0]]
    if bad:
        raise UsageError(f"--env {bad[0]!r}: write NAME=VALUE")
    env = dict(e.split("=", 1) for e in env_pairs)
    if min(timeout, probe_budget, call_timeout) <= 0:
        raise UsageError("--timeout, --probe-budget and --call-timeout must be positive")
    verify = None if keep_unverified else _verifier(probe_budget)
    plan = init(list(command), sandbox, out, timeout, env, verify, call_timeout)
    for s in plan.surfaces:
        if s.name in plan.excluded:
            console.print(f"  excluded {s.name}: {plan.excluded[s.name]}", markup=False)
        else:
            console.print(f"  {s.name}: {s.cls}{' (repository)' if s.repository else ''}"
                          f"{' (writes)' if s.writes else ''}", markup=False)
    probed = "" if plan.probe_s is None else f", probed in {plan.probe_s:.1f} s"
    excluded = (f"{len(plan.excluded)} excluded: no harmless call accepted; attack them by "
                "fixing the environment or editing the contract" if plan.excluded
                else "none excluded")
    console.print(f"{out}: {len(plan.surfaces)} surfaces from {plan.server!r}, {excluded} "
                  f"({len(plan.skipped)} tools with nothing to attack{probed}), locked",
                  markup=False)
    if plan.unverified:
        console.print(f"  not probed within --probe-budget (kept): {', '.join(plan.unverified)}",
                      markup=False)
    return 0


def _verifier(budget: float) -> Callable[[Path], tuple[dict[str, str], list[str], float]]:
    """The attack engine's baseline discovery, run on the candidate contract."""

    def verify(path: Path) -> tuple[dict[str, str], list[str], float]:
        from toolkit.gates.attack import probe_baselines

        probe = probe_baselines(contract_mod.load(path), budget)
        return probe.excluded, probe.unverified, probe.seconds

    return verify
