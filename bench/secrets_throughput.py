"""Benchmark (issues #5, #13): `toolkit secrets scan` against `detect-secrets scan --all-files`.

For each tree (default: reports/, a pre-commit-sized handful of files; this repository, a
small tree; this Python's standard library without site-packages, a large one) it scans with
both, reports MB/s and the speed-up, and
checks the findings are identical (file, type, hashed secret, line). It also times the
toolkit's scan of the tree forced through a worker pool and forced serial, to show what
the pool's start-up costs a small scan. Target: at least 5x the detect-secrets CLI.

    python bench/secrets_throughput.py [TREE ...]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from toolkit.gates.fastscan import scan_files, uses_pool
from toolkit.gates.secrets_scan import classify, detect, listing

REPO = Path(__file__).resolve().parent.parent
TINY = REPO / "reports"  # a handful of files: what a pre-commit hook usually scans


def timed(fn: object, *args: object, **kw: object) -> tuple[float, object]:
    t0 = time.monotonic()
    out = fn(*args, **kw)  # type: ignore[operator]
    return time.monotonic() - t0, out


def bench(tree: Path) -> bool:
    files = [p for p in listing([tree]) if "site-packages" not in p.parts and classify(p) is None]
    rels = [os.path.relpath(p, tree) for p in files]
    if not rels:  # detect-secrets without file arguments would scan the working directory instead
        raise SystemExit(f"{tree}: no text file to scan")
    mb = sum(p.stat().st_size for p in files) / 1e6
    os.chdir(tree)
    t_ours, ours = timed(detect, rels)
    t_pool, _ = timed(scan_files, rels, pool_bytes=0)
    t_serial, _ = timed(scan_files, rels, processes=1)
    t0 = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "detect_secrets", "scan", "--all-files", *rels],
        capture_output=True,
        text=True,
        check=True,
    )
    t_cli = time.monotonic() - t0
    theirs = {
        (f, r["type"], r["hashed_secret"], r["line_number"])
        for f, items in json.loads(out.stdout)["results"].items()
        for r in items
    }
    mine = {(f, s.type, s.secret_hash, s.line_number) for f, s in ours}  # type: ignore
    print(f"tree {tree}: {len(files)} files, {mb:.1f} MB")
    print(
        f"  toolkit secrets scan:            {t_ours:6.2f} s  {mb / t_ours:7.2f} MB/s  "
        f"{len(mine)} findings"
    )
    mode = "pool" if uses_pool(rels, os.cpu_count() or 1) else "serial"
    print(
        f"    forced pool / forced serial:   {t_pool:6.2f} s / {t_serial:.2f} s (default: {mode})"
    )
    print(
        f"  detect-secrets scan --all-files: {t_cli:6.2f} s  {mb / t_cli:7.2f} MB/s  "
        f"{len(theirs)} findings"
    )
    print(f"  speed-up {t_cli / t_ours:.2f}x (target >= 5x); findings identical: {mine == theirs}")
    if mine != theirs:
        print("  only toolkit:", sorted(mine - theirs)[:5])
        print("  only detect-secrets:", sorted(theirs - mine)[:5])
    return mine == theirs


def main() -> None:
    trees = [Path(a).resolve() for a in sys.argv[1:]] or [TINY,
        REPO,
        Path(sysconfig.get_paths()["stdlib"]).resolve(),
    ]
    ok = [bench(t) for t in trees]
    sys.exit(0 if all(ok) else 1)


if __name__ == "__main__":
    main()
