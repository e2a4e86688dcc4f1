"""The watchdog process: ``python -m toolkit.core.reclaimer RUN_FILE OWNER_PID``.

Started by :class:`toolkit.core.watchdog.Watchdog` with a pipe on stdin. End-of-file without
``done`` means the toolkit died without stopping its services: reclaim them from the run
file, signalling only what the run file's marker proves is ours.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import IO

import psutil

from toolkit.core import platform
from toolkit.core.supervisor import read_run_file, reclaim_processes
from toolkit.core.watchdog import DONE


def wait_for_owner(stdin: IO[bytes]) -> bool:
    """Block until the toolkit closes the pipe; True when it said the stop was clean."""
    tail = b""
    while True:
        chunk = stdin.read(64)
        if not chunk:
            return tail.endswith(DONE)
        tail = (tail + chunk)[-len(DONE):]


def reclaim(run_file: Path, owner_pid: int) -> int:
    """Stop what the dead toolkit left; returns how many processes were signalled."""
    doc = read_run_file(run_file)
    if doc is None or int(doc.get("owner_pid", 0) or 0) != owner_pid:
        return 0  # a clean stop removed it, or another toolkit owns it now
    killed = reclaim_processes(doc)
    run_file.unlink(missing_ok=True)
    return killed


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not argv[1].isdigit():
        print("usage: python -m toolkit.core.reclaimer RUN_FILE OWNER_PID", file=sys.stderr)
        return 2
    run_file, owner_pid = Path(argv[0]), int(argv[1])
    platform.ignore_interactive_signals()  # Ctrl-C is for the toolkit, which stops cleanly
    if wait_for_owner(sys.stdin.buffer):
        return 0
    deadline = time.monotonic() + 5
    while psutil.pid_exists(owner_pid) and time.monotonic() < deadline:
        time.sleep(0.02)  # the pipe closed first; let the owner finish dying
    reclaim(run_file, owner_pid)
    return 0


if __name__ == "__main__":  # pragma: no cover - run as a process by Watchdog.start
    sys.exit(main(sys.argv[1:]))
