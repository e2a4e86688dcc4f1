"""The `toolkit` command: a thin shell that parses, calls the core and returns an exit code.

Exit codes: 0 pass, 1 a gate failed or findings were made, 2 tool, contract or usage error.
Each command group is its own module; importing it adds its commands to the click group.
"""

from __future__ import annotations

import errno
import os

import click
from rich.markup import escape

from toolkit.cli import (  # noqa: F401  (importing a module registers its commands)
    attack,
    contract,
    cycle,
    determinism,
    drill,
    gates,
    ledger,
    release,
    secrets,
    soak,
    stack,
    verify,
)
from toolkit.cli.app import cli, console, err_console
from toolkit.core.errors import ToolkitError

__all__ = ["cli", "console", "err_console", "main"]


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code instead of exiting, so tests can call it in-process."""
    try:
        code = cli.main(args=argv, prog_name="toolkit", standalone_mode=False)
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
    except OSError as exc:
        if exc.errno not in _STORAGE_ERRNOS:
            return _internal(exc)
        where = f" writing {exc.filename}" if exc.filename else ""
        err_console.print(
            f"[red]error:[/] {escape(exc.strerror or str(exc))}{escape(where)}: the disk or "
            "folder the toolkit writes to (evidence, logs, state) has no room or is read-only; "
            "free space or point the contract's \\[evidence].dir elsewhere. A run cut short "
            "this way is never sealed, so it never counts as passed.", soft_wrap=True)
        return 2
    except Exception as exc:  # noqa: BLE001 - a toolkit bug: one paragraph, exit 2
        return _internal(exc)
    return code if isinstance(code, int) else 0  # every command returns its exit code


# a full disk, a quota, a read-only file system: the machine's state, not a toolkit bug
_STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


def _internal(exc: BaseException) -> int:
    """A bug in the toolkit: one paragraph and exit code 2; the traceback on request."""
    err_console.print(
        f"[red]internal error:[/] {type(exc).__name__}: {escape(str(exc))}. This is a toolkit "
        "bug; rerun with TOOLKIT_DEBUG=1 for the traceback and report it."
    )
    if os.environ.get("TOOLKIT_DEBUG"):
        raise exc
    return 2
