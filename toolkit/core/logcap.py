"""Capped, rotated capture of a service's stdout and stderr.

A service that floods its output must not fill the disk or the evidence folder: the
supervisor reads the service's pipe here and writes at most ``max_bytes`` per file, keeping
``backups`` rotated files (``name.log.1`` is the newest old one). With ``backups = 0`` the
log stops growing at ``max_bytes`` and the rest is read and dropped. Either way the
figures say how much was cut, and they go into the evidence.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

CHUNK = 64 * 1024


@dataclass
class LogFigures:
    path: str
    max_bytes: int
    backups: int
    bytes_seen: int = 0
    bytes_dropped: int = 0
    rotations: int = 0

    @property
    def cut(self) -> bool:
        """True when any of the service's output is no longer on disk."""
        return self.bytes_dropped > 0

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "max_bytes": self.max_bytes, "backups": self.backups,
                "bytes_seen": self.bytes_seen, "bytes_dropped": self.bytes_dropped,
                "rotations": self.rotations, "cut": self.cut}


class CappedLog:
    """Pumps one pipe into a size-capped, rotated file on a daemon thread."""

    def __init__(self, target: Path, max_bytes: int, backups: int):
        self.target = target
        self.fig = LogFigures(str(target), max_bytes, backups)
        self._sizes: list[int] = []  # bytes in target.1 .. target.N, newest first
        self._out: IO[bytes] | None = None
        self._written = 0
        self._thread: threading.Thread | None = None
        target.parent.mkdir(parents=True, exist_ok=True)
        self._open_current()

    def _open_current(self) -> None:
        self._out = open(self.target, "ab")  # noqa: SIM115 - held open across writes
        self._written = self._out.tell()

    def start(self, pipe: IO[bytes]) -> None:
        self._thread = threading.Thread(target=self._pump, args=(pipe,), daemon=True,
                                        name=f"log {self.target.name}")
        self._thread.start()

    def _pump(self, pipe: IO[bytes]) -> None:
        fd = pipe.fileno()
        try:
            while True:
                try:
                    data = os.read(fd, CHUNK)
                except OSError:
                    return
                if not data:
                    return
                self.write(data)
        finally:
            pipe.close()
            self._close_out()

    def write(self, data: bytes) -> None:
        self.fig.bytes_seen += len(data)
        while data:
            room = self.fig.max_bytes - self._written
            if room <= 0:
                if not self._rotate_or_drop():
                    self.fig.bytes_dropped += len(data)
                    return
                continue
            part, data = data[:room], data[room:]
            if self._out is None or self._out.closed:
                self.fig.bytes_dropped += len(part) + len(data)
                return
            try:
                self._out.write(part)
                self._out.flush()
            except OSError:  # a full or failing disk: drop, keep draining the service's pipe
                self.fig.bytes_dropped += len(part) + len(data)
                self._close_out()
                return
            self._written += len(part)

    def _rotate_or_drop(self) -> bool:
        try:
            return self._rotate()
        except OSError:  # no room to rotate into: the rest is dropped, the pipe still drained
            self._close_out()
            return False

    def _rotate(self) -> bool:
        """Shift name.log -> name.log.1 -> ...; False when no backups are kept."""
        if self.fig.backups <= 0:
            return False
        self._close_out()
        oldest = self.target.with_name(f"{self.target.name}.{self.fig.backups}")
        if len(self._sizes) >= self.fig.backups:
            self.fig.bytes_dropped += self._sizes.pop()
            oldest.unlink(missing_ok=True)
        for k in range(len(self._sizes), 0, -1):
            src = self.target.with_name(f"{self.target.name}.{k}")
            src.replace(self.target.with_name(f"{self.target.name}.{k + 1}"))
        self.target.replace(self.target.with_name(f"{self.target.name}.1"))
        self._sizes.insert(0, self._written)
        self.fig.rotations += 1
        self._open_current()
        return True

    def _close_out(self) -> None:
        if self._out is not None and not self._out.closed:
            try:
                self._out.close()
            except OSError:  # its buffered tail could not be written (disk full): dropped
                pass

    def finish(self, timeout: float = 2.0) -> LogFigures:
        """Wait for the pipe to drain (the service has exited); a descendant that still
        holds the pipe open does not hold us up longer than ``timeout``."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.fig
