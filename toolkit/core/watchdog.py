"""A watchdog that stops a run's services when the toolkit itself dies (kill -9, OOM).

The supervisor starts one watchdog per stack, before the first service, and keeps the
write end of a pipe to the watchdog's stdin. The kernel closes that pipe however the
toolkit ends, so the watchdog sees end-of-file the instant the toolkit is gone. A clean
stop writes ``done`` first; without it the watchdog reclaims the run from its run file,
with the same rule as every other reclaim: only processes that still carry the run's
marker (or that the run's own records and control group prove are ours) are signalled.
"""

from __future__ import annotations

import subprocess  # nosec B404
import sys
from pathlib import Path

from toolkit.core import platform

DONE = b"done\n"


class Watchdog:
    """The toolkit's end of the pipe: start it, then ``dismiss()`` after a clean stop."""

    def __init__(self, run_file: Path, owner_pid: int):
        self.run_file = run_file
        self.owner_pid = owner_pid
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = [sys.executable, "-m", "toolkit.core.reclaimer",
                str(self.run_file), str(self.owner_pid)]
        self.proc = subprocess.Popen(  # nosec B603 - our own interpreter and module
            argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            close_fds=True, **platform.spawn_kwargs())

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def dismiss(self) -> None:
        """Tell the watchdog the stop was clean and wait for it to leave."""
        proc, self.proc = self.proc, None
        if proc is None or proc.stdin is None:
            return
        try:
            proc.stdin.write(DONE)
            proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()  # our own child, started above
            proc.wait(timeout=5)
