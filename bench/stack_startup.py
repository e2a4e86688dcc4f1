"""Benchmark: reference stack start (all six healthy), readiness-notice latency, stop.

Targets (issue #2): start <= 3 s, readiness noticed <= 50 ms after a service's first 200,
stop <= 2 s, on a 2-core machine. Readiness latency is measured against a fixture service
whose first healthy moment is known exactly (it binds only after --delay).

    python bench/stack_startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.conftest import fixture_service, reference_copy, write_contract
from toolkit.core import contract as contract_mod
from toolkit.core.supervisor import Supervisor


def stack_once(path: Path) -> tuple[float, float]:
    sup = Supervisor(contract_mod.load(path), marker="bench-" + secrets.token_hex(4))
    t0 = time.monotonic()
    sup.start_all()
    up = time.monotonic() - t0
    t1 = time.monotonic()
    sup.stop_all()
    sup.close()
    return up, time.monotonic() - t1


def notice_latency(folder: Path, delay: float = 0.3) -> float:
    """Wall time from the service's socket listening (its first possible 200) to the supervisor
    noticing.
    """
    ready = folder / f"ready-{secrets.token_hex(3)}"
    text = '[contract]\nname = "lat"\nversion = "1.0.0"\n' + fixture_service(
        "lat", 7391, "--delay", str(delay), "--ready-file", str(ready))
    sup = Supervisor(contract_mod.load(write_contract(folder, text)), marker="bench")
    sup.start_all()
    noticed_wall = time.time() - (time.monotonic() - (sup.running["lat"].healthy_at or 0))
    sup.stop_all()
    sup.close()
    return noticed_wall - float(ready.read_text())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = reference_copy(Path(tmp))
        ups, downs = zip(*(stack_once(path) for _ in range(args.runs)))
        lat = [notice_latency(Path(tmp)) for _ in range(args.runs)]
    print(
        f"stack up, all six healthy: median {statistics.median(ups):.3f} s  max {max(ups):.3f} s  "
        "(target <= 3 s)"
    )
    print(
        f"stack stop, all six:       median {statistics.median(downs):.3f} s  max "
        f"{max(downs):.3f} s  (target <= 2 s)"
    )
    print(
        "readiness noticed after the service started listening: "
        f"median {statistics.median(lat) * 1000:.1f} ms"
        f"  max {max(lat) * 1000:.1f} ms  (target <= 50 ms, poll interval 20 ms)"
    )


if __name__ == "__main__":
    main()
