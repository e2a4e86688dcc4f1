"""SQLite backups, logical hashes, verification and restore.

Backups go through SQLite's online backup API (never a raw copy of a live file), into a
temporary file that is fsynced and renamed, so a kill -9 at any moment leaves either the
previous complete backup or the new complete one. The logical hash covers schema and
rows, ordered by content, so it is stable across VACUUM and backup copies (as
SQLite's dbhash is).
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolkit.core.evidence import atomic_write, sha256_file


@dataclass
class DbCheck:
    path: str
    opened: bool = False
    integrity: str = "not run"
    foreign_keys: int = 0
    logical_hash: str | None = None
    wal_frames: int | None = None
    sentinels: set[int] = field(default_factory=set)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return (
            self.opened and self.integrity == "ok" and self.foreign_keys == 0 and self.error is None
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "opened": self.opened,
            "integrity": self.integrity,
            "foreign_key_violations": self.foreign_keys,
            "logical_hash": self.logical_hash,
            "wal_frames": self.wal_frames,
            "sentinels": len(self.sentinels),
            "error": self.error,
            "ok": self.ok,
        }


def connect_ro(path: Path) -> sqlite3.Connection:
    """Read-only, and never creates a file that is missing."""
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)


def backup(src: Path, dst: Path) -> None:
    """Consistent online backup through the backup API, written atomically."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.partial")
    tmp.unlink(missing_ok=True)
    with sqlite3.connect(f"file:{src}?mode=ro", uri=True, timeout=10) as source:
        target = sqlite3.connect(tmp)
        try:
            source.backup(target)
            target.execute("PRAGMA journal_mode=DELETE")
        finally:
            target.close()
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, dst)


def logical_hash(conn: sqlite3.Connection) -> str:
    """Schema plus every row, each table's rows sorted by content."""
    h = hashlib.sha256()
    objects = conn.execute("SELECT type, name, tbl_name, COALESCE(sql, '') FROM sqlite_master "
                           "WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name").fetchall()
    for obj in objects:
        h.update(repr(obj).encode())
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                "AND name NOT LIKE 'sqlite_%' ORDER BY name"):
        query = f"SELECT * FROM {quote_ident(name)}"  # nosec B608 - a quoted identifier
        rows = conn.execute(query).fetchall()
        for row in sorted(repr(r) for r in rows):
            h.update(name.encode() + b"\0" + row.encode())
    return h.hexdigest()


def quote_ident(name: str) -> str:
    """An SQLite identifier, quoted: a table named ``evade"`` must not end the quotes early."""
    return '"' + name.replace('"', '""') + '"'


def text_cells(conn: sqlite3.Connection) -> list[str]:
    cells: list[str] = []
    for (name,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    ):
        for row in conn.execute(f"SELECT * FROM {quote_ident(name)}"):  # nosec B608 - quoted name
            cells.extend(v for v in row if isinstance(v, str))
    return cells


def sentinel_seqs(cells: list[str], pattern: re.Pattern[str] | None, lo: int, hi: int) -> set[int]:
    if pattern is None:
        return set()
    found = set()
    for cell in cells:
        for m in pattern.finditer(cell):
            n = int(m.group(1))
            if lo <= n < hi:
                found.add(n)
    return found


def wal_frames(path: Path) -> int | None:
    wal = path.with_name(path.name + "-wal")
    if not wal.exists():
        return None
    size = wal.stat().st_size
    if size < 32:
        return 0
    with open(wal, "rb") as fh:
        header = fh.read(32)
    page = int.from_bytes(header[8:12], "big") or 65536
    return (size - 32) // (24 + page)


def verify(path: Path, pattern: re.Pattern[str] | None = None, lo: int = 0, hi: int = 0) -> DbCheck:
    """integrity_check, foreign_key_check, logical hash, WAL frames, sentinel rows."""
    check = DbCheck(str(path))
    if not path.is_file():
        check.error = "database file missing"
        return check
    check.wal_frames = wal_frames(path)
    try:
        conn = connect_ro(path)
        try:
            check.opened = True
            rows = conn.execute("PRAGMA integrity_check").fetchall()
            check.integrity = "ok" if rows == [("ok",)] else "; ".join(str(r[0]) for r in rows[:5])
            check.foreign_keys = len(conn.execute("PRAGMA foreign_key_check").fetchall())
            check.logical_hash = logical_hash(conn)
            check.sentinels = sentinel_seqs(text_cells(conn), pattern, lo, hi)
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        check.error = f"{type(exc).__name__}: {exc}"
        if check.integrity == "not run":
            check.integrity = "failed to run"
    return check


def restore(backup_file: Path, target: Path) -> None:
    """Replace a database (and drop its stale -wal/-shm) with a backup copy, atomically."""
    for suffix in ("-wal", "-shm", "-journal"):
        target.with_name(target.name + suffix).unlink(missing_ok=True)
    atomic_write(target, backup_file.read_bytes())


def file_entry(path: Path) -> dict[str, Any]:
    return {"path": str(path), "sha256": sha256_file(path), "bytes": path.stat().st_size}
