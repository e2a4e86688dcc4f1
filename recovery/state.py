"""Snapshots of declared state folders, taken and restored without following symlinks out.

A snapshot keeps regular files (with their modes), symlinks (as links) and every folder with
its mode, so a restore brings back empty folders and permissions as well as contents.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import stat
from pathlib import Path
from typing import Any

from toolkit.core.evidence import atomic_write, sha256_file
from toolkit.core.signing import KEY_FILE_PATTERNS

MODES = "folder-modes.json"


def _excluded(src: Path, exclude: set[Path]) -> bool:
    if is_key_file(src):
        return True
    return src in exclude or any(str(src).startswith(str(x) + "-") for x in exclude)


def is_key_file(path: Path) -> bool:
    """Key material never enters a snapshot (and so never evidence or a release bundle)."""
    return any(fnmatch.fnmatch(path.name, pattern) for pattern in KEY_FILE_PATTERNS)


def snapshot(dirs: list[Path], dest: Path, exclude: set[Path]) -> list[dict[str, Any]]:
    """Copy regular files and links (as links) of each folder into ``dest``; returns a manifest."""
    entries: list[dict[str, Any]] = []
    modes: dict[str, dict[str, int]] = {}
    for i, root in enumerate(dirs):
        if root.is_symlink() or not root.is_dir():
            continue
        modes[str(i)] = {}
        for folder, subdirs, files in os.walk(root, followlinks=False):
            here = Path(folder)
            modes[str(i)][here.relative_to(root).as_posix()] = stat.S_IMODE(here.lstat().st_mode)
            for name in sorted(files) + [d for d in subdirs if (here / d).is_symlink()]:
                entry = _copy_one(here / name, root, dest / str(i), exclude)
                if entry is not None:
                    entries.append(entry)
    atomic_write(dest / MODES, json.dumps(modes, sort_keys=True).encode())
    return entries


def _copy_one(src: Path, root: Path, base: Path, exclude: set[Path]) -> dict[str, Any] | None:
    if _excluded(src, exclude):
        return None
    rel = src.relative_to(root)
    target = base / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    if src.is_symlink():
        os.symlink(os.readlink(src), target)
        return {"root": str(root), "path": str(rel), "link": os.readlink(src)}
    if src.is_file():
        shutil.copy2(src, target, follow_symlinks=False)
        return {"root": str(root), "path": str(rel), "sha256": sha256_file(target)}
    return None


def restore_snapshot(
    dirs: list[Path], src: Path, exclude: set[Path], only_missing: bool = False
) -> int:
    """Put snapshot files back and folder modes with them; files the snapshot does not know stay.

    ``only_missing`` puts back only what is gone (the next run's recovery of an interrupted
    drill: anything present was written after the drill and is newer than the snapshot).
    """
    modes = _modes(src)
    restored = 0
    for i, root in enumerate(dirs):
        if root.is_symlink():
            continue  # never restore through a link out of the declared tree
        restored += _restore_root(root, src / str(i), exclude, only_missing)
        _apply_modes(root, modes.get(str(i), {}))
    return restored


def _restore_root(root: Path, base: Path, exclude: set[Path], only_missing: bool) -> int:
    restored = 0
    if not base.is_dir():
        return 0
    for folder, subdirs, files in os.walk(base, followlinks=False):
        links = [d for d in subdirs if (Path(folder) / d).is_symlink()]
        for name in [*files, *links]:
            item = Path(folder) / name
            target = root / item.relative_to(base)
            present = target.is_symlink() or target.exists()
            if target in exclude or (only_missing and present):
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if present:
                target.unlink()
            if item.is_symlink():
                os.symlink(os.readlink(item), target)
            else:
                shutil.copy2(item, target, follow_symlinks=False)
            restored += 1
    return restored


def _modes(src: Path) -> dict[str, dict[str, int]]:
    try:
        data = json.loads((src / MODES).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _apply_modes(root: Path, modes: dict[str, int]) -> None:
    """Recreate every snapshot folder, then set modes deepest first (a 0o500 parent last)."""
    for rel in sorted(modes, key=lambda r: r.count("/"), reverse=False):
        folder = root / rel
        if not folder.is_symlink():
            folder.mkdir(parents=True, exist_ok=True)
    for rel in sorted(modes, key=lambda r: (r.count("/"), r), reverse=True):
        folder = root / rel
        if folder.is_dir() and not folder.is_symlink():
            os.chmod(folder, modes[rel])
