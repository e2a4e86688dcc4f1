"""What a drill must put back, written down before it destroys anything.

Before the first fault the drill writes ``recovery-pending.json`` (fsynced, atomic) into its
own backup folder: the state folders and their snapshot, and the newest verified backup of
every database. The run deletes it once it has recovered. A record whose owner is gone (the
toolkit was killed -9 between the fault and the recovery) is finished by the next drill:
missing state files come back from the snapshot, folder modes are reset, and a database that
no longer verifies is restored from the recorded backup.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from recovery import sqlite as rsql
from recovery.state import restore_snapshot
from toolkit.core.events import DrillResumed, Event
from toolkit.core.evidence import atomic_write

RECORD = "recovery-pending.json"


def write(folder: Path, doc: dict[str, Any]) -> Path:
    me = psutil.Process()
    path = folder / RECORD
    atomic_write(path, json.dumps({**doc, "owner_pid": me.pid, "owner_started": me.create_time()},
                                  indent=1, sort_keys=True).encode())
    return path


def done(folder: Path) -> None:
    (folder / RECORD).unlink(missing_ok=True)


def owner_alive(doc: dict[str, Any]) -> bool:
    try:
        proc = psutil.Process(int(doc["owner_pid"]))
        return bool(abs(proc.create_time() - float(doc["owner_started"])) < 0.01)
    except (psutil.NoSuchProcess, psutil.AccessDenied, KeyError, TypeError, ValueError):
        return False


def interrupted(backup_dir: Path) -> list[Path]:
    """Records left by drills whose toolkit process is gone."""
    if not backup_dir.is_dir():
        return []
    found = []
    for path in sorted(backup_dir.glob(f"*/{RECORD}")):
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            found.append(path)
            continue
        if not owner_alive(doc):
            found.append(path)
    return found


def resume(path: Path, emit: Callable[[Event], None]) -> dict[str, Any]:
    """Finish the recovery an interrupted drill promised; returns what was done."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        emit(DrillResumed({"record": str(path), "error": f"unreadable record: {exc}"}))
        return {"record": str(path), "error": str(exc)}
    dirs = [Path(d) for d in doc.get("state_dirs", [])]
    exclude = {Path(x) for x in doc.get("exclude", [])}
    out: dict[str, Any] = {"record": str(path), "run_id": doc.get("run_id"), "databases": {}}
    snap = Path(doc["snapshot"]) if doc.get("snapshot") else None
    if snap is not None and snap.is_dir():
        out["state_files_restored"] = restore_snapshot(dirs, snap, exclude, only_missing=True)
    for db, backup in doc.get("databases", {}).items():
        out["databases"][db] = _resume_db(Path(db), backup)
    os.unlink(path)
    emit(DrillResumed(out))
    return out


def _resume_db(db: Path, backup: dict[str, Any]) -> str:
    if rsql.verify(db).ok:
        return "live database verifies; kept"
    file = Path(backup.get("file", ""))
    check = rsql.verify(file) if file.is_file() else None
    if check is None or not check.ok or check.logical_hash != backup.get("logical_hash"):
        return f"FAILED: live database broken and backup {file} does not verify"
    rsql.restore(file, db)
    return f"restored from {file}"
