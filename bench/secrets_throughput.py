"""Benchmark (issue #5): `toolkit secrets scan` against `detect-secrets scan --all-files`, same run.

Scans a large real tree (default: this Python's standard library, without
site-packages) with both, reports MB/s for each, and checks the findings are identical
(file, type, hashed secret, line). Target: at least 3x the detect-secrets CLI.

    python bench/secrets_throughput.py [TREE]
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

from toolkit.secrets_scan import classify, detect, walk


def main() -> None:
    tree = Path(sys.argv[1] if len(sys.argv) > 1 else sysconfig.get_paths()["stdlib"]).resolve()
    files = [p for p in walk([tree]) if "site-packages" not in p.parts and classify(p) is None]
    rels = [os.path.relpath(p, tree) for p in files]
    mb = sum(p.stat().st_size for p in files) / 1e6
    os.chdir(tree)
    t0 = time.monotonic()
    ours = detect(rels)
    t_ours = time.monotonic() - t0
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "detect_secrets", "scan", "--all-files", *rels],
                         capture_output=True, text=True, check=True)
    t_cli = time.monotonic() - t0
    theirs = {(f, r["type"], r["hashed_secret"], r["line_number"])
              for f, items in json.loads(out.stdout)["results"].items() for r in items}
    mine = {(f, s.type, s.secret_hash, s.line_number) for f, s in ours}
    print(f"tree {tree}: {len(files)} files, {mb:.1f} MB")
    print(f"toolkit secrets scan:               {t_ours:6.2f} s  {mb / t_ours:6.2f} MB/s  {len(mine)} findings")
    print(f"detect-secrets scan --all-files:    {t_cli:6.2f} s  {mb / t_cli:6.2f} MB/s  {len(theirs)} findings")
    print(f"speed-up {t_cli / t_ours:.2f}x (target >= 3x); findings identical: {mine == theirs}")
    if mine != theirs:
        print("only toolkit:", sorted(mine - theirs)[:5])
        print("only detect-secrets:", sorted(theirs - mine)[:5])
        sys.exit(1)


if __name__ == "__main__":
    main()
