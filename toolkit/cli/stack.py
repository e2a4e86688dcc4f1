"""`toolkit stack`: run the contract's services by hand."""

from __future__ import annotations

from pathlib import Path

import click

from toolkit.cli.app import cli, console, contract_option
from toolkit.core import contract as contract_mod
from toolkit.core.runner import default_contract_path, load_locked


@cli.group("stack")
def stack_group() -> None:
    """Run the contract's services by hand: up (foreground), status, down."""


@stack_group.command("up")
@contract_option
@click.option(
    "--for", "seconds", type=float, default=None, help="Stop by itself after this many seconds."
)
def stack_up(contract_path: Path | None, seconds: float | None) -> int:
    """Start every service in depends_on order; Ctrl-C stops them all cleanly."""
    from toolkit.core import stack

    return stack.up(load_locked(contract_path), console, max_seconds=seconds)


@stack_group.command("status")
@contract_option
def stack_status(contract_path: Path | None) -> int:
    """Probe every service's health."""
    from toolkit.core import stack

    return stack.status(contract_mod.load(contract_path or default_contract_path()), console)


@stack_group.command("down")
@contract_option
def stack_down(contract_path: Path | None) -> int:
    """Stop a stack started by `toolkit stack up` elsewhere."""
    from toolkit.core import stack

    return stack.down(contract_mod.load(contract_path or default_contract_path()), console)
