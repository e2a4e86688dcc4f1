"""`python -m toolkit` and the `toolkit` command (``toolkit.__main__:launch``).

The launcher imports only the standard library's ``os``, ``signal`` and ``sys`` before it
installs its Ctrl-C handler: importing the command line (click, rich, httpx, the gates)
takes a noticeable fraction of a second, and a Ctrl-C in that time used to print a
KeyboardInterrupt traceback. Nothing has started yet then, so the toolkit leaves at once
with exit code 130, as it does for a Ctrl-C later on.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType


def _interrupted_while_importing(signum: int, frame: FrameType | None) -> None:
    os.write(2, b"interrupted\n")
    os._exit(130)  # nothing to stop or flush: no command has run yet


def launch() -> int:
    """Import the command line under a quiet Ctrl-C handler, then run it."""
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.SIG_IGN:  # started with Ctrl-C ignored: keep it ignored
        signal.signal(signal.SIGINT, _interrupted_while_importing)
    from toolkit.cli import main

    signal.signal(signal.SIGINT, signal.SIG_DFL if previous is None else previous)
    return main()


if __name__ == "__main__":
    sys.exit(launch())
