"""Benchmark: the toolkit's own overhead per start/stop cycle (issue #3).

Six trivial services become healthy exactly 200 ms after start. Overhead per cycle is the
cycle's wall time minus the services' own time: the slowest startup of each dependency
level (all six are one level here, so the slowest of the six) plus the slowest shutdown,
plus the health-watch duration. Target: at most 100 ms per cycle.

    python bench/cycle_overhead.py [--cycles 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.conftest import fixture_service, write_contract
from toolkit.gates.cycle import CycleConfig, run_cycle


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cycles", type=int, default=5)
    args = ap.parse_args()
    text = '[contract]\nname = "overhead"\nversion = "1.0.0"\n' + "".join(
        fixture_service(f"svc{i}", 7481 + i, "--delay", "0.2") for i in range(6))
    with tempfile.TemporaryDirectory() as tmp:
        path = write_contract(Path(tmp), text)
        t0 = time.monotonic()
        result = run_cycle(CycleConfig(path, args.cycles, 0.0, 1.0))
        wall = time.monotonic() - t0
    if result.verdict != "pass":
        sys.exit(f"cycle gate did not pass: {result.body['failure']}")
    services = sum(
        max(c["startup_s"].values()) + max(c["shutdown_s"].values()) for c in result.body["cycles"]
    )
    overhead = (wall - services) / args.cycles
    per = [max(c["startup_s"].values()) for c in result.body["cycles"]]
    print(
        f"{args.cycles} cycles of six services: wall {wall:.3f} s, services' own start+stop "
        f"{services:.3f} s"
    )
    print(
        f"toolkit overhead per cycle: {overhead * 1000:.1f} ms (target <= 100 ms); "
        f"slowest startup per cycle median {statistics.median(per) * 1000:.0f} ms (200 ms delay + "
        "interpreter)"
    )


if __name__ == "__main__":
    main()
