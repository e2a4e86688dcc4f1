"""kill -9 each gate at random moments; check what a killed toolkit leaves behind (issue 11).

For each gate (cycle, soak short, attack, secrets, drill, determinism) on a copy of the
reference contract in a temp folder (free ports):

1. one calibration run, timed (its verdict is printed; the kill moments are drawn in
   [0, its duration));
2. N runs, each kill -9'd at a seeded random moment, and after each one:
   - running: processes carrying a toolkit run marker (TOOLKIT_RUN_MARKER) 1 s after the kill;
   - outside: files changed outside the declared paths (declared: the work folder's
     state/, artifacts/, ledger home, temp dir and .toolkit/ run-file folder) that are
     still changed after the next run; looked at in the work folder and the repository's
     work tree (outside_until_next: changed by the kill, put back by the next run);
   - litter: anything in the toolkit's temp dir (TMPDIR points into the work folder, so
     every temp file is attributable; pytest's own pytest-of-* retention folder, made by
     the suite Gate 5 runs, is not the toolkit's) and toolkit canary files under state/
     that the killed run left;
   - next run: one unkilled run right after every kill (the run that must start clean);
   - false_pass: a summary saying "pass" that does not verify as a sealed run, or a drill
     history row saying "pass" for a run without such a summary;
   - not_clean: the next, unkilled run did not end as the calibration run did, or left
     marker processes (its own or the killed run's) or litter behind.

Run it inside a private network and pid namespace:

    unshare -n -p -f --mount-proc sh -c \
      'ip link set lo up && python bench/kill_random.py --kills 20'

``--kills 3 --gates drill,secrets`` makes a quick run. Prints one line of counts per gate and
exits 1 if any count that must be zero is not.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil

from tests.ports import reference_on_free_ports
from toolkit.core.evidence import verify_run
from toolkit.core.supervisor import MARKER_ENV

REPO = Path(__file__).resolve().parent.parent
GATES = {
    "cycle": ["cycle", "--count", "1", "--health-duration", "2s", "--interval", "1s"],
    "soak": [
        "soak",
        "--duration",
        "8s",
        "--warmup",
        "1s",
        "--sample-interval",
        "2s",
        "--seed",
        "1",
    ],
    "attack": ["attack", "--all", "--budget", "quick", "--seed", "1"],
    "secrets": ["secrets", "scan", "--no-bandit"],
    "drill": ["drill", "--warmup", "1s"],
    "determinism": ["determinism", "--runs", "2"],
}
IGNORED = {
    ".git",
    ".venv",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    "artifacts",
    "state",
    "release_gate_toolkit.egg-info",
}


@dataclass
class Tally:
    gate: str
    calibration_s: float = 0.0
    calibration_verdict: int = -1
    kills: int = 0
    finished_before_kill: int = 0
    running: int = 0
    outside: int = 0
    outside_until_next: int = 0
    litter: int = 0
    false_pass: int = 0
    not_clean: int = 0
    notes: list[str] = field(default_factory=list)


def marked() -> list[psutil.Process]:
    """Every process carrying a toolkit run marker (this pid namespace is ours alone)."""
    out = []
    for proc in psutil.process_iter():
        try:
            if MARKER_ENV in proc.environ():
                out.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return out


def tree_state(root: Path, skip: set[str]) -> dict[str, tuple[int, int]]:
    state = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in skip]
        for name in files:
            p = Path(folder) / name
            try:
                st = p.lstat()
            except OSError:
                continue
            state[str(p)] = (st.st_size, st.st_mtime_ns)
    return state


def outside_state(work: Path) -> dict[str, tuple[int, int]]:
    """Files outside the declared paths: the work folder's own files and the repository."""
    state = tree_state(
        work, {"state", "artifacts", "state-home", "tmp", ".toolkit"}
    )  # .toolkit: run files
    state.update(tree_state(REPO, IGNORED))
    return state


def litter(work: Path) -> list[str]:
    found = [str(p) for p in (work / "tmp").iterdir() if not p.name.startswith("pytest-of-")]
    state = work / "state"
    if state.is_dir():
        found += [str(p) for p in state.rglob("*toolkit-canary-*")]
    return found


def false_passes(work: Path) -> int:
    bad = 0
    sealed_pass = set()
    for summary in (work / "artifacts").rglob("*-summary-*.json"):
        try:
            verdict = json.loads(summary.read_text()).get("verdict")
        except (OSError, ValueError):
            continue
        if verdict == "pass":
            if verify_run(summary.parent):
                bad += 1
            else:
                sealed_pass.add(summary.parent.name)
    history = work / "artifacts" / "phase3" / "drill-history.sqlite"
    if history.exists():
        import sqlite3

        with sqlite3.connect(history) as conn:
            rows = conn.execute("SELECT run_id FROM drills WHERE verdict = 'pass'").fetchall()
        bad += sum(1 for (run_id,) in rows if run_id not in sealed_pass)
    return bad


def launch(argv: list[str], contract: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "toolkit", *argv, "--contract", str(contract)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def diff(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> list[str]:
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


def ours_alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    return [p for p in procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def end(procs: list[psutil.Process]) -> None:
    """Leftovers nothing reaped are ours to end (this bench started them), after counting them."""
    for proc in procs:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            continue
    psutil.wait_procs(procs, timeout=5)


def one_gate(gate: str, kills: int, rng: random.Random, root: Path) -> Tally:
    t = Tally(gate)
    work = Path(tempfile.mkdtemp(prefix=f"kill-{gate}-", dir=root))
    contract, _ = reference_on_free_ports(work)
    for folder in ("tmp", "state/config", "state/logs"):  # what a first stack start would create
        (work / folder).mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "TOOLKIT_STATE_HOME": str(work / "state-home"),
        "TMPDIR": str(work / "tmp"),
        "COLUMNS": "120",
    }
    argv = GATES[gate]
    start = time.monotonic()
    t.calibration_verdict = launch(argv, contract, env).wait(timeout=900)
    t.calibration_s = round(time.monotonic() - start, 1)
    for _ in range(kills):
        before, litter_before = outside_state(work), set(litter(work))
        proc = launch(argv, contract, env)
        time.sleep(rng.uniform(0, t.calibration_s))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            t.kills += 1
        else:
            t.finished_before_kill += 1
        proc.wait()
        time.sleep(1.0)
        left = marked()
        t.running += bool(left)
        changed = diff(before, outside_state(work))
        t.litter += bool(set(litter(work)) - litter_before)
        t.false_pass += false_passes(work)
        t.not_clean += not next_run_clean(t, argv, contract, env, work, left)
        still = diff(before, outside_state(work))
        t.outside += bool(still)
        t.outside_until_next += bool(changed) and not still
        if still:
            t.notes.append(f"outside changed: {still[:3]}")
    return t


def next_run_clean(t: Tally, argv: list[str], contract: Path, env: dict[str, str], work: Path,
                   left: list[psutil.Process]) -> bool:
    code = launch(argv, contract, env).wait(timeout=900)
    time.sleep(0.5)
    stale, now, junk = ours_alive(left), marked(), litter(work)
    if code != t.calibration_verdict or stale or now or junk:
        t.notes.append(f"next run: exit {code} (calibration {t.calibration_verdict}), killed run's "
                       f"processes alive {len(stale)}, marked now {len(now)}, litter {junk[:2]}")
        end([*stale, *now])
        return False
    return True


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=20, help="kill -9 moments per gate (default 20)")
    ap.add_argument(
        "--gates", default=",".join(GATES), help="comma-separated subset of " + ",".join(GATES)
    )
    ap.add_argument("--seed", type=int, default=None, help="seed for the kill moments (printed)")
    ap.add_argument("--json", action="store_true", help="print the tallies as JSON")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    rng = random.Random(seed)  # nosec B311 - kill moments, not secrets
    print(f"seed {seed}, {args.kills} kills per gate", flush=True)
    root = Path(tempfile.mkdtemp(prefix="kill-random-"))
    tallies = []
    for gate in [g.strip() for g in args.gates.split(",") if g.strip()]:
        if gate not in GATES:
            print(f"unknown gate {gate!r}; known: {', '.join(GATES)}", file=sys.stderr)
            return 2
        t = one_gate(gate, args.kills, rng, root)
        tallies.append(t)
        print(
            f"{gate:12} calib {t.calibration_s:6.1f}s exit {t.calibration_verdict} | kills "
            f"{t.kills} "
            f"(done first {t.finished_before_kill}) | running {t.running} outside {t.outside} "
            f"(until next run {t.outside_until_next}) "
            f"litter {t.litter} false_pass {t.false_pass} not_clean {t.not_clean}",
            flush=True,
        )
        for note in t.notes[:3]:
            print(f"    {note}")
    if args.json:
        print(json.dumps([asdict(t) for t in tallies], indent=1))
    bad = any(
        t.running or t.outside or t.litter or t.false_pass or t.not_clean or t.calibration_verdict
        for t in tallies
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
