"""Reading a file the user named (a contract, a trust file, a root cause), never for ever.

A FIFO would block ``open`` until a writer came, and ``/dev/zero`` or ``/dev/urandom`` would
be read until memory ran out: each of these hung a command. ``read_regular`` opens without
blocking, accepts only a regular file (links followed: the user named it) and reads at most
``limit`` bytes; anything else is an ``OSError`` whose ``strerror`` says why, so callers'
existing "cannot read" messages name it.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

LIMIT = 16 << 20  # far above any contract, key or trust file


def read_regular(path: Path, limit: int = LIMIT) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "Is a directory", str(path))
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, "not a regular file (a FIFO, device or socket)",
                          str(path))
        chunks, got = [], 0
        while chunk := os.read(fd, min(1 << 20, limit + 1 - got)):
            chunks.append(chunk)
            got += len(chunk)
            if got > limit:
                raise OSError(errno.EFBIG, f"larger than {limit >> 20} MiB", str(path))
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_regular_text(path: Path, limit: int = LIMIT) -> str:
    """UTF-8 text of a regular file (UnicodeDecodeError as ``bytes.decode`` raises it)."""
    return read_regular(path, limit).decode("utf-8")
