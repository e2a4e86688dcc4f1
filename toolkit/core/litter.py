"""Every file and folder the toolkit creates outside its evidence is recorded before it exists.

A run's ledger is one append-only file in a per-user folder (``$TOOLKIT_STATE_HOME``, else
``$XDG_STATE_HOME/release-gate-toolkit``, else ``~/.local/state/release-gate-toolkit``),
named for the process, whose first line holds its pid and start time. Each path is written
to the ledger (fsynced) *before* it is created and marked removed after it is deleted, so a
kill -9 at any moment leaves a ledger that names exactly what is left. The next run's
:func:`sweep` removes what dead runs recorded, and nothing else: a recorded name that no
longer exists is skipped, and a folder recorded as ``dir`` is removed only when empty.
"""

from __future__ import annotations

import getpass
import json
import os
import secrets
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

import psutil

from toolkit.core import platform

_LOCK = threading.Lock()
_LEDGER: Ledger | None = None


def home() -> Path:
    env = os.environ.get("TOOLKIT_STATE_HOME")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "state"
    return base / "release-gate-toolkit"


def ledger_dir() -> Path:
    """The ledger folder; a private one in the temp dir when the per-user one cannot be made."""
    folder = home() / "created"
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        return folder
    except OSError:
        return Path(tempfile.gettempdir()) / f"release-gate-toolkit-{getpass.getuser()}" / "created"


class Ledger:
    """This process's record of what it created (kinds: file, dir, tree)."""

    def __init__(self) -> None:
        me = psutil.Process()
        folder = ledger_dir()
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = folder / f"{me.pid}-{secrets.token_hex(4)}.jsonl"
        self.live: dict[str, str] = {}
        self._append({"pid": me.pid, "started": me.create_time(), **platform.namespace_id()})

    def _append(self, doc: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(doc) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def track(self, path: Path, kind: str = "file") -> Path:
        with _LOCK:
            self._append({"path": str(path), "kind": kind})
            self.live[str(path)] = kind
        return path

    def forget(self, path: Path) -> None:
        with _LOCK:
            if self.live.pop(str(path), None) is not None:
                self._append({"removed": str(path)})
            if not self.live:  # nothing of ours is left anywhere: the ledger has nothing to say
                self.path.unlink(missing_ok=True)
                _reset()


def _reset() -> None:
    global _LEDGER
    _LEDGER = None


def ledger() -> Ledger:
    global _LEDGER
    with _LOCK:
        if _LEDGER is None or _LEDGER.path.parent != ledger_dir():
            _LEDGER = Ledger()
        return _LEDGER


def track(path: Path, kind: str = "file") -> Path:
    """Record ``path`` before creating it."""
    return ledger().track(path, kind)


def forget(path: Path) -> None:
    """``path`` is gone (removed by its creator)."""
    if _LEDGER is not None:
        _LEDGER.forget(path)


def temp_dir(prefix: str) -> Path:
    """A private folder in the temp dir (0700), recorded before it is made."""
    path = Path(tempfile.gettempdir()) / f"{prefix}{secrets.token_hex(8)}"
    track(path, "tree")
    path.mkdir(mode=0o700)
    return path


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    forget(path)


def _remove(path: Path, kind: str) -> bool:
    try:
        if path.is_symlink() or (path.is_file() and kind == "file"):
            path.unlink()
        elif kind == "tree" and path.is_dir():
            shutil.rmtree(path)  # rmtree never follows links out of the tree
        elif kind == "dir" and path.is_dir():
            path.rmdir()  # only when empty: anything inside is not ours to judge
        else:
            return False
    except OSError:
        return False
    return True


def _owner_alive(head: dict[str, Any]) -> bool:
    here = platform.namespace_id()
    if head.get("boot") != here["boot"]:
        return False  # the machine rebooted since: that run is over
    if head.get("pidns") != here["pidns"]:
        return True  # another pid namespace: its pids mean nothing here; never judge it
    try:
        proc = psutil.Process(int(head["pid"]))
        return bool(abs(proc.create_time() - float(head["started"])) < 0.01)
    except (psutil.NoSuchProcess, psutil.AccessDenied, KeyError, TypeError, ValueError):
        return False


def _read(path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    head: dict[str, Any] = {}
    live: dict[str, str] = {}
    for i, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines()):
        try:
            doc = json.loads(line)
        except ValueError:
            continue  # a line torn by the kill
        if i == 0:
            head = doc
        elif "path" in doc:
            live[str(doc["path"])] = str(doc.get("kind", "file"))
        elif "removed" in doc:
            live.pop(str(doc["removed"]), None)
    return head, live


def sweep() -> list[str]:
    """Remove what dead runs recorded and did not remove; returns the paths removed."""
    try:
        ledgers = sorted(ledger_dir().glob("*.jsonl"))
    except OSError:
        return []
    removed: list[str] = []
    for led in ledgers:
        if _LEDGER is not None and led == _LEDGER.path:
            continue
        try:
            head, live = _read(led)
        except OSError:
            continue
        if head and _owner_alive(head):
            continue
        # deepest first, so recorded files go before the folders recorded around them
        for path, kind in sorted(
            live.items(), key=lambda item: item[0].count(os.sep), reverse=True
        ):
            if _remove(Path(path), kind):
                removed.append(path)
        led.unlink(missing_ok=True)
    return removed
