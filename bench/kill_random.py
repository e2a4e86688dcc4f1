"""kill -9 each gate at random moments; check what a killed toolkit leaves behind (issue 11).

For each gate (cycle, soak with a scaled-down 8 s profile, attack, secrets, drill,
determinism, and the release ceremony as a rehearsal) on a copy of the reference contract in
a temp folder (free ports):

1. one calibration run, timed (its verdict is printed; the kill moments are drawn in
   [0, its duration));
2. runs kill -9'd at seeded random moments until N kills landed (a run that finished
   before its moment is counted apart, "done first", and redrawn; at most 2N runs), and
   after each one:
   - running: up to 3 s after the kill, any process (a) carrying a toolkit run marker
     (TOOLKIT_RUN_MARKER), (b) named by a run file the killed run left (.toolkit/*.json), (c)
     in a toolkit cgroup (<cgroup mount>/release-gate-toolkit/*) that appeared during the
     run, or (d) anything else alive in this private pid namespace except this script and
     its ancestors (a stray pytest or locust worker is counted even with no marker);
   - outside: files and folders changed outside the declared paths (declared: the work
     folder's state/, artifacts/, ledger home, temp dir and .toolkit/ run-file folder) that
     are still changed after the next run; looked at in the work folder, the repository's
     work tree, toolkit-* entries of the system temp folder (/tmp: TMPDIR is moved, so
     anything there ignored it) and the toolkit's cgroup folders (an empty cgroup left
     behind counts); outside_until_next: changed by the kill, put back by the next run;
   - litter: anything in the toolkit's temp dir (TMPDIR points into the work folder, so
     every temp file is attributable; pytest's own pytest-of-* retention folder, made by
     the suite Gate 5 runs, is not the toolkit's) and toolkit canary files under state/
     that the killed run left;
   - next run: one unkilled run right after every kill (the run that must start clean);
   - false_pass: a summary saying "pass" that does not verify as a sealed run, a drill
     history row saying "pass" for a run without such a summary, or a release candidate
     folder holding an approval that `release verify` rejects;
   - not_clean: the next, unkilled run did not end as the calibration run did, or left
     marker processes (its own or the killed run's) or litter behind.

Run it inside a private network and pid namespace:

    unshare -n -p -f --mount-proc sh -c \
      'ip link set lo up && mount -t tmpfs tmpfs /tmp && python bench/kill_random.py --kills 20'

(the tmpfs gives the run a /tmp of its own, so a toolkit-* entry there is this run's.)

The cgroup hierarchy is shared with whatever else runs toolkits on the machine, so a
cgroup counted as left behind is named in the notes for a check by hand.
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
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil

from tests.ports import reference_on_free_ports
from toolkit.core.evidence import verify_run
from toolkit.core.supervisor import MARKER_ENV
from toolkit.gates.release import verify_release

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
    "release": [
        "release",
        "--rehearsal",
        "--key",
        "{work}/release-key.pem",
        "--signer",
        "Kill Bench, tester",
    ],
}
SYSTEM_TMP = Path("/tmp")


def private_pid_namespace() -> bool:
    """True under `unshare -p -f --mount-proc sh -c '... kill_random.py ...'`: pid 1 is that sh."""
    try:
        return any("kill_random" in part for part in psutil.Process(1).cmdline())
    except psutil.Error:
        return False


PRIVATE_NS = private_pid_namespace()
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
    running_why: dict[str, int] = field(default_factory=dict)
    outside: int = 0
    outside_until_next: int = 0
    litter: int = 0
    cgroup_left: int = 0
    cgroup_unattributed: int = 0
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


def ancestors() -> set[int]:
    """This script and its ancestors: the only processes the namespace may hold between runs."""
    me = psutil.Process()
    return {me.pid, *(p.pid for p in me.parents())}


def cgroup_parents() -> list[Path]:
    """Every mounted hierarchy's release-gate-toolkit/ folder (where run cgroups live)."""
    found = []
    with open("/proc/self/mounts", encoding="utf-8") as fh:
        for row in (line.split() for line in fh):
            if len(row) > 2 and row[2] in ("cgroup", "cgroup2"):
                found.append(Path(row[1]) / "release-gate-toolkit")
    return found


def toolkit_cgroups() -> set[Path]:
    out: set[Path] = set()
    for parent in cgroup_parents():
        try:
            out.update(p for p in parent.iterdir() if (p / "cgroup.procs").is_file())
        except OSError:
            continue
    return out


class CgroupWatch(threading.Thread):
    """Tells this run's cgroups from other toolkits' on a shared hierarchy: cgroup.procs
    shows a member outside this pid namespace as 0, one inside it by its pid."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.mine: set[Path] = set()
        self.foreign: set[Path] = set()
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.05):
            for group in toolkit_cgroups() - self.mine - self.foreign:
                try:
                    members = (group / "cgroup.procs").read_text().split()
                except OSError:
                    continue
                if "0" in members:
                    self.foreign.add(group)
                elif members:
                    self.mine.add(group)

    def left(self, before: set[Path]) -> tuple[list[Path], list[Path]]:
        """Cgroups new since ``before`` and still there: (ours, never seen with a member)."""
        new = toolkit_cgroups() - before - self.foreign
        return sorted(new & self.mine), sorted(new - self.mine)


WATCH = CgroupWatch()


def cgroup_pids(groups: set[Path]) -> set[int]:
    pids: set[int] = set()
    for group in groups:
        try:
            pids.update(int(x) for x in (group / "cgroup.procs").read_text().split())
        except (OSError, ValueError):
            continue
    return {p for p in pids if p > 0}


def run_file_pids(work: Path) -> set[int]:
    pids: set[int] = set()
    for f in (work / ".toolkit").glob("*.json"):
        try:
            doc = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        pids.update(int(s.get("pid", 0)) for s in doc.get("services", {}).values())
        pids.update(int(r.get("pid", 0)) for r in doc.get("records", []))
    return {p for p in pids if p > 0 and psutil.pid_exists(p)}


def leftovers(work: Path, new_groups: set[Path]) -> dict[str, list[psutil.Process]]:
    """What is still alive, by the way it was found (a process may be found several ways)."""
    keep = ancestors()

    def procs(pids: set[int]) -> list[psutil.Process]:
        out = []
        for pid in pids - keep:
            try:
                proc = psutil.Process(pid)
                if proc.status() != psutil.STATUS_ZOMBIE:
                    out.append(proc)
            except psutil.Error:
                continue
        return out

    found = {
        "marker": [p for p in marked() if p.pid not in keep],
        "run_file": procs(run_file_pids(work)),
        "cgroup": procs(cgroup_pids(new_groups)),
        "namespace": procs(set(psutil.pids())) if PRIVATE_NS else [],
    }
    return {k: v for k, v in found.items() if v}


def settle(
    work: Path, new_groups: set[Path], timeout: float = 3.0
) -> dict[str, list[psutil.Process]]:
    """Leftovers, after giving a dying run's own clean-up up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        left = leftovers(work, new_groups)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


def tree_state(root: Path, skip: set[str]) -> dict[str, tuple[int, int]]:
    state = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in skip]
        for name in dirs:
            state[str(Path(folder) / name) + "/"] = (-1, 0)  # a folder: only that it exists
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
    for entry in SYSTEM_TMP.glob("toolkit-*"):
        state[str(entry)] = (-1, 0)
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
    for approved in (work / "artifacts").rglob("*_APPROVED.txt"):
        problems, _ = verify_release(approved.parent, [work / "release-key.pem.pub"])
        bad += bool(problems)  # an approval a killed ceremony left without a valid signature
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
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.Error:
            continue
    return out


def describe(proc: psutil.Process) -> str:
    try:
        return f"{proc.pid} " + " ".join(proc.cmdline()[:5])[:120]
    except psutil.Error:
        return f"{proc.pid} (gone)"


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
    argv = [a.format(work=work) for a in GATES[gate]]
    if gate == "release":
        subprocess.run(
            [sys.executable, "-m", "toolkit", "release", "keygen", str(work / "release-key.pem")],
            cwd=REPO,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    start = time.monotonic()
    t.calibration_verdict = launch(argv, contract, env).wait(timeout=900)
    t.calibration_s = round(time.monotonic() - start, 1)
    attempts = 0
    while t.kills < kills and attempts < 2 * kills:  # a run that ends first is not a kill
        attempts += 1
        before, litter_before = outside_state(work), set(litter(work))
        groups_before = toolkit_cgroups()
        proc = launch(argv, contract, env)
        time.sleep(rng.uniform(0, t.calibration_s))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            t.kills += 1
        else:
            t.finished_before_kill += 1
        proc.wait()
        found = settle(work, toolkit_cgroups() - groups_before - WATCH.foreign)
        t.running += bool(found)
        for why, procs in found.items():
            t.running_why[why] = t.running_why.get(why, 0) + 1
            t.notes.append(f"running after kill ({why}): {[describe(p) for p in procs[:2]]}")
        left = sorted({p for procs in found.values() for p in procs}, key=lambda p: p.pid)
        changed = diff(before, outside_state(work))
        t.litter += bool(set(litter(work)) - litter_before)
        t.false_pass += false_passes(work)
        t.not_clean += not next_run_clean(t, argv, contract, env, work, left)
        still = diff(before, outside_state(work))
        mine, unknown = WATCH.left(groups_before)
        t.cgroup_left += bool(mine)
        t.cgroup_unattributed += bool(unknown)
        if mine or unknown:
            t.notes.append(f"cgroups left: ours {mine[:2]}, never seen with a member {unknown[:2]}")
        t.outside += bool(still)
        t.outside_until_next += bool(changed) and not still
        if still:
            t.notes.append(f"outside changed: {still[:3]}")
    return t


def next_run_clean(
    t: Tally,
    argv: list[str],
    contract: Path,
    env: dict[str, str],
    work: Path,
    left: list[psutil.Process],
) -> bool:
    code = launch(argv, contract, env).wait(timeout=900)
    time.sleep(0.5)
    stale, junk = ours_alive(left), litter(work)
    now = [p for procs in leftovers(work, set()).values() for p in procs]
    if code != t.calibration_verdict or stale or now or junk:
        t.notes.append(
            f"next run: exit {code} (calibration {t.calibration_verdict}), killed run's "
            f"processes alive {len(stale)}, marked now {len(now)}, litter {junk[:2]}"
        )
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
    print(
        f"seed {seed}, {args.kills} kills per gate; private pid namespace: {PRIVATE_NS}", flush=True
    )
    root = Path(tempfile.mkdtemp(prefix="kill-random-"))
    WATCH.start()
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
            f"(done first {t.finished_before_kill}) | running {t.running} {t.running_why or ''} "
            f"outside {t.outside} "
            f"(until next run {t.outside_until_next}) "
            f"litter {t.litter} cgroup_left {t.cgroup_left} "
            f"(unattributed {t.cgroup_unattributed}) "
            f"false_pass {t.false_pass} not_clean {t.not_clean}",
            flush=True,
        )
        for note in t.notes[:3]:
            print(f"    {note}")
    if args.json:
        print(json.dumps([asdict(t) for t in tallies], indent=1))
    bad = any(
        t.running
        or t.outside
        or t.litter
        or t.cgroup_left
        or t.false_pass
        or t.not_clean
        or t.calibration_verdict
        for t in tallies
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
