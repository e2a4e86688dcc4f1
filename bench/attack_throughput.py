"""Benchmark: `toolkit attack --all` at the standard budget on the reference stack.

Reports payload requests per second and wall time (target <= 60 s on this machine).

    python bench/attack_throughput.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.conftest import reference_copy
from toolkit.gates.attack import AttackConfig, run_attacks


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = reference_copy(Path(tmp))
        t0 = time.monotonic()
        result, _cases = run_attacks(AttackConfig(path, [], budget="standard"))
        wall = time.monotonic() - t0
    sent = result.body["payloads_sent"]
    print(f"toolkit attack --all (standard): wall {wall:.2f} s (target <= 60 s), {sent} payloads, "
          f"{sent / wall:.0f} payload requests/s overall, verdict {result.verdict}, "
          f"{len(result.body['findings'])} findings")


if __name__ == "__main__":
    main()
