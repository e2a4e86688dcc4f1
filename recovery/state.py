"""Snapshots of declared state folders, taken and restored without following symlinks out."""

from __future__ import annotations

import fnmatch
import os
import shutil
from pathlib import Path
from typing import Any

from toolkit.evidence import sha256_file
from toolkit.signing import KEY_FILE_PATTERNS


def is_key_file(path: Path) -> bool:
    """Key material never enters a snapshot (and so never evidence or a release bundle)."""
    return any(fnmatch.fnmatch(path.name, pattern) for pattern in KEY_FILE_PATTERNS)


def snapshot(dirs: list[Path], dest: Path, exclude: set[Path]) -> list[dict[str, Any]]:
    """Copy regular files and links (as links) of each folder into ``dest``; returns a manifest."""
    entries = []
    for i, root in enumerate(dirs):
        if not root.is_dir():
            continue
        for folder, subdirs, files in os.walk(root, followlinks=False):
            for name in sorted(files) + [d for d in subdirs if (Path(folder) / d).is_symlink()]:
                src = Path(folder) / name
                if src in exclude or any(str(src).startswith(str(x) + "-") for x in exclude):
                    continue
                if is_key_file(src):
                    continue
                rel = src.relative_to(root)
                target = dest / str(i) / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                if src.is_symlink():
                    os.symlink(os.readlink(src), target)
                    entries.append({"root": str(root), "path": str(rel), "link": os.readlink(src)})
                elif src.is_file():
                    shutil.copy2(src, target, follow_symlinks=False)
                    entries.append({"root": str(root), "path": str(rel), "sha256": sha256_file(target)})
    return entries


def restore_snapshot(dirs: list[Path], src: Path, exclude: set[Path]) -> int:
    """Put snapshot files back; files the snapshot does not know are left alone."""
    restored = 0
    for i, root in enumerate(dirs):
        base = src / str(i)
        if not base.is_dir():
            continue
        for folder, _, files in os.walk(base, followlinks=False):
            for name in files:
                item = Path(folder) / name
                target = root / item.relative_to(base)
                if target in exclude:
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.is_symlink() or target.exists():
                    target.unlink()
                if item.is_symlink():
                    os.symlink(os.readlink(item), target)
                else:
                    shutil.copy2(item, target, follow_symlinks=False)
                restored += 1
    return restored
