"""Run each gate's default command on the reference stack N times in a row (issue 11).

Each gate runs N times (default 10) one after the other on one copy of the reference contract
(free ports, state and evidence in a temp folder, so runs see what earlier runs left, as a
CI machine would). The commands are the ones `toolkit gates` runs by default (its quick
profile):

- cycle: 3 start/stop cycles, 5 s of health probes at 1 s (the full-strength 10 cycles and
  30 min of probes are `--profile full`);
- soak: the scaled-down CI profile, 30 s of traffic, 5 s warm-up, 5 s windows (the contract's
  own profile is 48 h);
- attack --all, secrets scan, drill and determinism: their defaults (a drill draws a new
  seed each run, printed with each failure);
- release --rehearsal: the ceremony over whatever evidence the gates above left.

Prints, per gate, passes out of N, median and worst duration, and the exit code and last
output line of each run that did not pass. Exit code 1 when any run did not pass.
Run it inside a private network and pid namespace:

    unshare -n -p -f --mount-proc sh -c 'ip link set lo up && python bench/repeat_gates.py'
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.ports import reference_on_free_ports

REPO = Path(__file__).resolve().parent.parent
GATES = {
    "cycle": ["cycle", "--count", "3", "--health-duration", "5s", "--interval", "1s"],
    "soak": ["soak", "--duration", "30s", "--warmup", "5s", "--window", "5s"],
    "attack": ["attack", "--all"],
    "secrets": ["secrets", "scan"],
    "drill": ["drill"],
    "determinism": ["determinism"],
    "release": [
        "release",
        "--rehearsal",
        "--key",
        "{work}/release-key.pem",
        "--signer",
        "Repeat Bench, tester",
    ],
}
PROFILE_NOTE = {
    "cycle": "quick profile: 3 cycles, 5 s of probes at 1 s",
    "soak": "scaled-down CI profile: 30 s, 5 s warm-up, 5 s windows (contract: 48 h)",
    "release": "rehearsal over the evidence the gates above left",
}


@dataclass
class Tally:
    gate: str
    runs: int = 0
    passed: int = 0
    durations: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def run_once(
    argv: list[str], contract: Path, env: dict[str, str], timeout: float
) -> tuple[int, float, str]:
    """(exit code, seconds, last output lines) of one `toolkit ARGV --contract C`."""
    cmd = [sys.executable, "-m", "toolkit", *argv, "--contract", str(contract)]
    start = time.monotonic()
    try:
        proc = subprocess.run(
            cmd, cwd=REPO, env=env, capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return -1, time.monotonic() - start, f"no result within {timeout:g} s"
    took = time.monotonic() - start
    text = (proc.stdout + proc.stderr).decode(errors="replace").strip().splitlines()
    return proc.returncode, took, " / ".join(line.strip() for line in text[-3:])[:400]


def one_gate(gate: str, n: int, root: Path, timeout: float) -> Tally:
    t = Tally(gate)
    work = Path(tempfile.mkdtemp(prefix=f"repeat-{gate}-", dir=root))
    contract, _ = reference_on_free_ports(work)
    for folder in ("state/config", "state/logs"):  # what the stack's first start creates, and
        (work / folder).mkdir(parents=True, exist_ok=True)  # the secrets gate scans
    env = {**os.environ, "TOOLKIT_STATE_HOME": str(work / "state-home"), "COLUMNS": "160"}
    argv = [a.format(work=work) for a in GATES[gate]]
    if gate == "release":
        subprocess.run(
            [sys.executable, "-m", "toolkit", "release", "keygen", str(work / "release-key.pem")],
            cwd=REPO,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        for before in ("cycle", "secrets"):  # evidence for the ceremony to bundle
            run_once(GATES[before], contract, env, timeout)
    for i in range(n):
        code, took, tail = run_once(argv, contract, env, timeout)
        t.runs += 1
        t.durations.append(round(took, 1))
        if code == 0:
            t.passed += 1
        else:
            t.failures.append(f"run {i + 1}: exit {code}: {tail}")
        print(f"  {gate} run {i + 1}/{n}: exit {code} in {took:.1f} s", flush=True)
    return t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10, help="runs per gate (default 10)")
    ap.add_argument(
        "--gates", default=",".join(GATES), help="comma-separated subset of " + ",".join(GATES)
    )
    ap.add_argument("--timeout", type=float, default=900, help="limit for one run, seconds")
    ap.add_argument("--json", action="store_true", help="print the tallies as JSON at the end")
    args = ap.parse_args()
    names = [g.strip() for g in args.gates.split(",") if g.strip()]
    unknown = [g for g in names if g not in GATES]
    if unknown:
        print(f"unknown gate(s) {unknown}; known: {', '.join(GATES)}", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="repeat-gates-"))
    print(f"{args.runs} runs per gate, reference stack, evidence under {root}", flush=True)
    tallies = []
    for gate in names:
        t = one_gate(gate, args.runs, root, args.timeout)
        tallies.append(t)
        note = f" ({PROFILE_NOTE[gate]})" if gate in PROFILE_NOTE else ""
        print(
            f"{gate:12} pass {t.passed}/{t.runs} | median {statistics.median(t.durations):.1f} s"
            f" worst {max(t.durations):.1f} s{note}",
            flush=True,
        )
        for failure in t.failures:
            print(f"    {failure}", flush=True)
    if args.json:
        print(json.dumps([asdict(t) for t in tallies], indent=1))
    return 0 if all(t.passed == t.runs for t in tallies) else 1


if __name__ == "__main__":
    sys.exit(main())
