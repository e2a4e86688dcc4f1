"""Built-in injectors: process faults, SQLite corruption recipes, state clearing.

Every recipe is deterministic from the drill's recorded seed. File faults have nothing
to roll back by design (undoing them is the recovery the drill measures); their
rollback says so in the journal. ``hang`` rolls back with SIGCONT.
"""

from __future__ import annotations

import abc
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from chaos.base import FaultContext
from toolkit.core import platform
from toolkit.core.errors import SafetyError

SQLITE_MAGIC = b"SQLite format 3\x00"
WAL_HEADER = 32
FRAME_HEADER = 24


def _rng(ctx: FaultContext, salt: str) -> random.Random:
    return random.Random(f"{ctx.seed}:{salt}")  # nosec B311 - deterministic fault recipe


def page_size(data: bytes) -> int:
    size = int.from_bytes(data[16:18], "big")
    return 65536 if size == 1 else size


def _tree(pid: int) -> list[int]:
    try:
        proc = psutil.Process(pid)
        return [pid, *(c.pid for c in proc.children(recursive=True))]
    except psutil.NoSuchProcess:
        return []


@dataclass
class Kill:
    """Kill -9 a service's whole process tree (default: every service)."""

    service: str | None = None
    name: str = "kill"

    def _targets(self, ctx: FaultContext) -> dict[str, int]:
        pids = ctx.pids()
        return {k: v for k, v in pids.items() if self.service in (None, k)}

    def describe(self, ctx: FaultContext) -> str:
        return (
            f"SIGKILL the process trees of {', '.join(self._targets(ctx)) or 'no running service'}"
        )

    def inject(self, ctx: FaultContext) -> dict[str, Any]:
        killed: dict[str, list[int]] = {}
        for name, pid in self._targets(ctx).items():
            tree = _tree(pid)
            platform.force_kill(tree, group_leader=pid)
            killed[name] = tree
        self._killed = killed
        return {"killed": killed}

    def verify(self, ctx: FaultContext) -> bool:
        deadline = time.monotonic() + 5
        pids = [p for tree in self._killed.values() for p in tree]
        while time.monotonic() < deadline:
            alive = [p for p in pids if psutil.pid_exists(p) and _status(p) != psutil.STATUS_ZOMBIE]
            if not alive:
                return bool(pids)
            time.sleep(0.02)
        return False

    def rollback(self, ctx: FaultContext) -> dict[str, Any]:
        return {"note": "nothing to undo; the drill restarts the services and measures it"}


@dataclass
class Hang:
    """Freeze a service with SIGSTOP for ``seconds``; rollback sends SIGCONT."""

    service: str | None = None
    seconds: float = 1.0
    name: str = "hang"

    def describe(self, ctx: FaultContext) -> str:
        return f"SIGSTOP {self.service or 'every service'} for {self.seconds:g} s, then SIGCONT"

    def inject(self, ctx: FaultContext) -> dict[str, Any]:
        self._frozen = [p for n, p in ctx.pids().items() if self.service in (None, n)]
        for pid in self._frozen:
            platform.suspend(pid)
        time.sleep(self.seconds)
        return {"frozen": self._frozen}

    def verify(self, ctx: FaultContext) -> bool:
        return bool(self._frozen) and all(_status(p) == psutil.STATUS_STOPPED for p in self._frozen)

    def rollback(self, ctx: FaultContext) -> dict[str, Any]:
        for pid in getattr(self, "_frozen", []):
            try:
                platform.resume(pid)
            except psutil.NoSuchProcess:
                continue
        return {"resumed": getattr(self, "_frozen", [])}


def _status(pid: int) -> str:
    try:
        return str(psutil.Process(pid).status())
    except psutil.NoSuchProcess:
        return ""


@dataclass
class FileFault(abc.ABC):
    """Base for SQLite file recipes; services must be stopped first (the drill kills them)."""

    db: Path
    name: str = ""

    @abc.abstractmethod
    def describe(self, ctx: FaultContext) -> str: ...

    @abc.abstractmethod
    def inject(self, ctx: FaultContext) -> dict[str, Any]: ...

    @abc.abstractmethod
    def verify(self, ctx: FaultContext) -> bool: ...

    def rollback(self, ctx: FaultContext) -> dict[str, Any]:
        return {
            "note": "file faults are not undone here; restoring is the recovery the drill measures"
        }

    def _before(self, path: Path) -> bytes:
        self._orig = path.read_bytes() if path.exists() else b""
        return self._orig


class CorruptHeader(FileFault):
    def describe(self, ctx: FaultContext) -> str:
        return f"overwrite the 16-byte file header of {self.db.name}"

    def inject(self, ctx: FaultContext) -> dict[str, Any]:
        ctx.declared(self.db)
        data = bytearray(self._before(self.db))
        junk = bytes(_rng(ctx, "header").randrange(256) for _ in range(16))
        data[:16] = junk
        self.db.write_bytes(bytes(data))
        return {"bytes": 16}

    def verify(self, ctx: FaultContext) -> bool:
        return self.db.read_bytes()[:16] != SQLITE_MAGIC


class CorruptPage(FileFault):
    def describe(self, ctx: FaultContext) -> str:
        return f"flip the b-tree page-type byte of a seeded page of {self.db.name}"

    def inject(self, ctx: FaultContext) -> dict[str, Any]:
        ctx.declared(self.db)
        data = bytearray(self._before(self.db))
        ps = page_size(bytes(data))
        pages = max(1, len(data) // ps)
        n = _rng(ctx, "page").randint(2, pages) if pages >= 2 else 1
        offset = (n - 1) * ps + (100 if n == 1 else 0)
        data[offset] ^= 0xFF  # 0x02/0x05/0x0a/0x0d become invalid page types
        self.db.write_bytes(bytes(data))
        self.page = n
        return {"page": n, "offset": offset, "page_size": ps}

    def verify(self, ctx: FaultContext) -> bool:
        return self.db.read_bytes() != self._orig


class Truncate(FileFault):
    def describe(self, ctx: FaultContext) -> str:
        return f"truncate {self.db.name} to a seeded fraction of its size"

    def inject(self, ctx: FaultContext) -> dict[str, Any]:
        ctx.declared(self.db)
        data = self._before(self.db)
        keep = (
            int(len(data) * _rng(ctx, "truncate").uniform(0.3, 0.7)) | 1
        )  # never on a page boundary
        with open(self.db, "r+b") as fh:
            fh.truncate(keep)
        return {"from": len(data), "to": keep}

    def verify(self, ctx: FaultContext) -> bool:
        return self.db.stat().st_size < len(self._orig)


class BitFlip(FileFault):
    def describe(self, ctx: FaultContext) -> str:
        return f"flip 32 seeded bits beyond the first page of {self.db.name}"

    def inject(self, ctx: FaultContext) -> dict[str, Any]:
        ctx.declared(self.db)
        data = bytearray(self._before(self.db))
        ps = page_size(bytes(data))
        rng = _rng(ctx, "bitflip")
        lo = ps if len(data) > ps else 100
        flips = [(rng.randrange(lo, len(data)), rng.randrange(8)) for _ in range(32)]
        for offset, bit in flips:
            data[offset] ^= 1 << bit
        self.db.write_bytes(bytes(data))
        return {"flips": len(flips)}

    def verify(self, ctx: FaultContext) -> bool:
        return self.db.read_bytes() != self._orig


class TornWal(FileFault):
    def _wal(self) -> Path:
        return self.db.with_name(self.db.name + "-wal")

    def describe(self, ctx: FaultContext) -> str:
        return f"tear {self._wal().name} in the middle of a frame"

    def inject(self, ctx: FaultContext) -> dict[str, Any]:
        wal = ctx.declared(self._wal())
        data = self._before(wal)
        if len(data) <= WAL_HEADER:
            return {"note": "no WAL frames to tear"}
        ps = int.from_bytes(data[8:12], "big") or 65536
        frame = FRAME_HEADER + ps
        frames = (len(data) - WAL_HEADER) // frame
        keep_frames = _rng(ctx, "wal").randint(max(0, frames // 2), max(0, frames - 1))
        cut = WAL_HEADER + keep_frames * frame + frame // 2
        with open(wal, "r+b") as fh:
            fh.truncate(cut)
        return {"frames": frames, "kept_whole_frames": keep_frames, "cut_at": cut}

    def verify(self, ctx: FaultContext) -> bool:
        wal = self._wal()
        return wal.exists() and wal.stat().st_size < len(self._orig)


class DeleteWal(FileFault):
    def describe(self, ctx: FaultContext) -> str:
        return f"delete the hot {self.db.name}-wal (and -shm)"

    def inject(self, ctx: FaultContext) -> dict[str, Any]:
        wal = ctx.declared(self.db.with_name(self.db.name + "-wal"))
        existed = wal.exists()
        self._orig = b""
        wal.unlink(missing_ok=True)
        self.db.with_name(self.db.name + "-shm").unlink(missing_ok=True)
        return {"existed": existed}

    def verify(self, ctx: FaultContext) -> bool:
        return not self.db.with_name(self.db.name + "-wal").exists()


@dataclass
class ClearState:
    """Empty each declared state folder, never following a symlink out of it."""

    name: str = "clear-state"

    def describe(self, ctx: FaultContext) -> str:
        return f"clear {', '.join(str(d) for d in ctx.state_dirs)}"

    def inject(self, ctx: FaultContext) -> dict[str, Any]:
        removed = 0
        for root in ctx.state_dirs:
            removed += clear_tree(ctx.declared(root))
        self._removed = removed
        return {"removed": removed}

    def verify(self, ctx: FaultContext) -> bool:
        return all(not any(Path(d).iterdir()) for d in ctx.state_dirs if Path(d).is_dir())

    def rollback(self, ctx: FaultContext) -> dict[str, Any]:
        return {"note": "state is brought back by the drill's restore"}


def clear_tree(root: Path) -> int:
    """Remove everything below ``root``; a symlink is removed as a link, its target untouched."""
    if root.is_symlink():
        raise SafetyError(f"{root} is itself a symlink; refusing to clear through it")
    removed = 0
    if not root.is_dir():
        return 0
    for folder, dirs, files in os.walk(root, topdown=False, followlinks=False):
        for name in files:
            os.unlink(os.path.join(folder, name))
            removed += 1
        for name in dirs:
            path = os.path.join(folder, name)
            if os.path.islink(path):
                os.unlink(path)
            else:
                os.rmdir(path)
            removed += 1
    return removed


FILE_FAULTS: dict[str, Callable[[Path, str], FileFault]] = {
    "corrupt-header": CorruptHeader,
    "corrupt-page": CorruptPage,
    "truncate": Truncate,
    "bitflip": BitFlip,
    "torn-wal": TornWal,
    "delete-wal": DeleteWal,
}
ALL_FAULTS = ("kill", "hang", *FILE_FAULTS, "clear-state")
