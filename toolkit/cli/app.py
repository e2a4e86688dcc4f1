"""What every command module shares: the click group, the consoles, the --contract option."""

from __future__ import annotations

import os
from pathlib import Path

import click
from rich.console import Console

from toolkit import __version__

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

contract_option = click.option(
    "--contract", "-c", "contract_path", type=click.Path(path_type=Path), default=None,
    help="Boot contract (TOML). Default: $TOOLKIT_CONTRACT or contracts/boot_contract.toml.")


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


def seconds(value: str | None, name: str) -> float | None:
    """A duration option ("30s", "10m") in seconds; a bad one is a usage error naming NAME."""
    from toolkit.core.errors import UsageError
    from toolkit.core.schema import parse_duration

    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise UsageError(f"{name} {value!r}: {exc}") from None
