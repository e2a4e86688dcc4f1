"""Gate 4: path rules (pyfakefs), corruption recipes on real SQLite files, torn WAL, full drills."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from chaos.base import FaultContext, run_injector
from chaos.faults import FILE_FAULTS, ClearState, TornWal, clear_tree
from recovery import pending
from recovery import sqlite as rsql
from recovery.state import restore_snapshot, snapshot
from reports.drill_history import history_path, read_history, start_history
from tests.conftest import REPO, contract_ports, listening, reference_copy, run_cli, write_contract
from tests.ports import reference_on_free_ports
from toolkit.core.errors import SafetyError
from toolkit.core.runner import gate_run, load_locked
from toolkit.gates.drill import (
    KEEP_BACKUPS,
    Drill,
    DrillConfig,
    drill_plan,
    make_plan,
    plan,
    run_drill,
    sentinel_pattern,
)

PATTERN = re.compile(r"sentinel-(\d+)")


def _ctx(dbs: list[Path], dirs: list[Path], seed: int = 7) -> FaultContext:
    return FaultContext(seed, dbs, dirs, dict, lambda event: None)


# ---------------------------------------------------------------- path rules (pyfakefs)

def test_clear_state_never_follows_symlinks_out(fs) -> None:  # type: ignore[no-untyped-def]
    fs.create_file("/outside/precious.txt", contents="keep me")
    fs.create_file("/srv/state/a/data.bin", contents="x")
    fs.create_symlink("/srv/state/link-to-file", "/outside/precious.txt")
    fs.create_symlink("/srv/state/a/link-to-dir", "/outside")
    removed = clear_tree(Path("/srv/state"))
    assert removed == 4 and list(Path("/srv/state").iterdir()) == []
    assert Path("/outside/precious.txt").read_text() == "keep me"


def test_undeclared_paths_are_refused(fs) -> None:  # type: ignore[no-untyped-def]
    fs.create_file("/srv/state/x")
    fs.create_file("/etc/important")
    ctx = _ctx([Path("/srv/db.sqlite")], [Path("/srv/state")])
    assert ctx.declared(Path("/srv/state/x")) == Path("/srv/state/x")
    with pytest.raises(SafetyError, match="does not declare"):
        ctx.declared(Path("/etc/important"))
    with pytest.raises(SafetyError):
        ctx.declared(Path("/srv/state-other"))  # a prefix is not containment


def test_clear_state_refuses_a_symlinked_root(fs) -> None:  # type: ignore[no-untyped-def]
    fs.create_file("/outside/precious.txt")
    fs.create_symlink("/srv/state", "/outside")
    with pytest.raises(SafetyError, match="itself a symlink"):
        run_injector(ClearState(), _ctx([], [Path("/srv/state")]))
    assert Path("/outside/precious.txt").exists()


# ---------------------------------------------------------------- recipes on real SQLite

def _db(path: Path, rows: int = 2000) -> Path:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE memory (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.executemany(
        "INSERT INTO memory VALUES (?, ?)", [(f"sentinel-{i}", "v" * 40) for i in range(rows)]
    )
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return path


@pytest.mark.parametrize("recipe", ["corrupt-header", "corrupt-page", "truncate", "bitflip"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_each_corruption_recipe_is_detected(tmp_path: Path, recipe: str, seed: int) -> None:
    db = _db(tmp_path / "m.db")
    before = rsql.verify(db, PATTERN, 0, 10**6)
    assert before.ok and len(before.sentinels) == 2000
    out = run_injector(FILE_FAULTS[recipe](db, recipe), _ctx([db], [tmp_path], seed))
    assert out["took_effect"]
    after = rsql.verify(db, PATTERN, 0, 10**6)
    detected = (
        not after.ok
        or after.logical_hash != before.logical_hash
        or after.sentinels != before.sentinels
    )
    assert detected, (recipe, after.to_dict())


WRITER = """
import sqlite3, sys, os
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA journal_mode=WAL"); conn.execute("PRAGMA wal_autocheckpoint=0")
conn.execute("CREATE TABLE memory (key TEXT PRIMARY KEY, value TEXT)")
for i in range(200):
    conn.execute("INSERT INTO memory VALUES (?, ?)", (f"sentinel-{i}", "x" * 200))
print("acked", flush=True)
os.kill(os.getpid(), 9)
"""


def test_torn_wal_loses_commits_silently_and_the_sentinel_count_catches_it(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    proc = subprocess.run([sys.executable, "-c", WRITER, str(db)], capture_output=True, text=True,
                          check=False)
    assert "acked" in proc.stdout and proc.returncode == -9
    assert db.with_name("w.db-wal").stat().st_size > 100_000  # 200 commits live in the WAL only
    out = run_injector(TornWal(db, "torn-wal"), _ctx([db], [tmp_path], seed=5))
    assert out["took_effect"]
    conn = sqlite3.connect(db)  # a normal open: SQLite recovers the WAL without any error
    rows = conn.execute("SELECT count(*) FROM memory").fetchone()[0]
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    assert rows < 200  # commits silently dropped
    check = rsql.verify(db, PATTERN, 0, 10**6)
    assert len(check.sentinels) == rows < 200


def test_logical_hash_is_stable_across_vacuum_and_backup(tmp_path: Path) -> None:
    db = _db(tmp_path / "h.db", rows=300)
    h1 = rsql.verify(db).logical_hash
    conn = sqlite3.connect(db)
    conn.execute("DELETE FROM memory WHERE key = 'sentinel-5'")
    conn.execute("INSERT INTO memory VALUES ('sentinel-5', ?)", ("v" * 40,))
    conn.commit()
    conn.execute("VACUUM")
    conn.close()
    rsql.backup(db, tmp_path / "b.db")
    assert rsql.verify(db).logical_hash == h1 == rsql.verify(tmp_path / "b.db").logical_hash


def test_sentinel_pattern_comes_from_the_writer_template() -> None:
    pat = sentinel_pattern({"json": {"key": "sentinel-{{seq}}", "value": "{{now}}"}})
    assert pat is not None and pat.findall("x sentinel-42 y") == ["42"]


# ---------------------------------------------------------------- full drills on the reference
# stack


@pytest.mark.slow
def test_reference_drill_passes_with_measured_rpo_and_rto(tmp_path: Path) -> None:
    path = reference_copy(tmp_path)
    result = run_drill(
        DrillConfig(path, ["kill", "corrupt-page"], seed=11, warmup_s=2.0, backup_interval_s=0.5)
    )
    b = result.body
    assert result.verdict == "pass", b
    assert b["integrity_ok"] and b["healthy"] and b["acknowledged_writes"] >= 1
    # measured, not raced: how fast a loaded machine writes or recovers is evidence, not a verdict
    folder = result.summary_path.parent
    _assert_measurements_consistent(b, folder)
    for name in (
        "gate4-backup-manifest.json",
        "gate4-recovery-results.json",
        "gate4-rpo-rto-measurements.txt",
    ):
        assert (folder / name).is_file()
    assert run_cli("verify", str(folder)) == 0
    assert run_cli("drill", "history", "--contract", str(path)) == 0
    assert listening(contract_ports(path)) == []


@pytest.mark.slow
def test_the_dry_run_plan_is_the_plan_the_run_records(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = reference_copy(tmp_path)
    seed = 17  # no --fault: the faults are drawn from the seed, so the seed alone fixes them
    assert run_cli("drill", "--dry-run", "--contract", str(path), "--seed", str(seed),
                   "--warmup", "1.5s") == 0
    printed = "".join(capsys.readouterr().out.split())  # rich wraps long paths anywhere
    planned = drill_plan(DrillConfig(path, seed=seed, warmup_s=1.5))
    for step in planned.steps():  # what --dry-run printed is this plan, step by step
        assert "".join(step.split()) in printed
    assert run_cli("drill", "--contract", str(path), "--seed", str(seed), "--warmup", "1.5s") == 0
    runs = tmp_path / "artifacts" / "phase3" / "drill"
    summary = max(runs.glob("*/gate4-summary-*.json"))
    recorded = json.loads(summary.read_text())["plan"]  # the summary holds the run's body
    journal = [json.loads(line) for line in (summary.parent / "journal.jsonl").open()]
    event = next(e for e in journal if e["event"] == "drill.plan")
    assert recorded == json.loads(json.dumps(planned.to_dict())) == event["data"]
    assert recorded["steps"] == planned.steps() and recorded["order"][0] == "kill"
    other = drill_plan(DrillConfig(path, seed=seed + 1, warmup_s=1.5)).to_dict()
    assert other["seed"] != recorded["seed"] and other["sentinel_base"] != recorded["sentinel_base"]


def _assert_measurements_consistent(b: dict[str, Any], folder: Path) -> None:
    """RPO, RTO and lost writes are present, sane, and the same in the body, the measurement
    list and the text file; lost writes are the acknowledged ones that did not survive."""
    ms = {m["metric"]: m for m in b["measurements"]}
    assert (
        b["rpo_s"] is not None and b["rpo_s"] >= 0 and ms["rpo_s"]["value"] == round(b["rpo_s"], 3)
    )
    assert (
        b["rto_s"] is not None and b["rto_s"] > 0 and ms["rto_s"]["value"] == round(b["rto_s"], 3)
    )
    assert ms["acknowledged_writes_lost"]["value"] == b["lost_writes"]
    text = dict(line.split("=", 1) for line in
                (folder / "gate4-rpo-rto-measurements.txt").read_text().splitlines())
    acked, surviving, lost = (int(text[k]) for k in ("acknowledged", "surviving", "lost"))
    assert acked == b["acknowledged_writes"] and lost == b["lost_writes"] == acked - surviving
    assert 0 <= lost <= acked and float(text["rpo_s"]) == pytest.approx(b["rpo_s"], abs=1e-3)
    assert float(text["recovered_at"]) - float(text["disaster_at"]) == pytest.approx(
        b["rto_s"], abs=2e-3
    )


@pytest.mark.slow
def test_a_corrupt_backup_fails_loudly(tmp_path: Path) -> None:
    path = reference_copy(tmp_path)
    result = run_drill(
        DrillConfig(path, ["corrupt-backup", "corrupt-header"], seed=3, warmup_s=1.5)
    )
    assert result.verdict == "fail" and not result.body["integrity_ok"]
    rec = json.loads((result.summary_path.parent / "gate4-recovery-results.json").read_text())
    assert "no restorable backup" in json.dumps(rec["recovery"])


@pytest.mark.slow
def test_kill_9_of_the_toolkit_mid_drill_then_rerun(tmp_path: Path) -> None:
    path = reference_copy(tmp_path)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "toolkit",
            "drill",
            "--contract",
            str(path),
            "--fault",
            "kill",
            "--warmup",
            "30s",
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "COLUMNS": "120"},
    )
    backups = tmp_path / "artifacts" / "backups"
    deadline = time.monotonic() + 120  # a bound against hangs, not a speed requirement
    while len(list(backups.rglob("*.sqlite"))) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    files = list(backups.rglob("*.sqlite"))
    assert files and all(
        rsql.verify(f).ok for f in files
    )  # every backup on disk is complete and sound
    result = run_drill(DrillConfig(path, ["kill"], seed=5, warmup_s=1.5))
    assert result.verdict == "pass", result.body
    assert listening(contract_ports(path)) == []


def test_dry_run_touches_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = reference_copy(tmp_path)  # locking records the lock in the evidence ledger: that is all
    before = sorted((p, p.stat().st_mtime_ns) for p in tmp_path.rglob("*"))
    assert (
        run_cli(
            "drill",
            "--dry-run",
            "--contract",
            str(path),
            "--fault",
            "torn-wal",
            "--fault",
            "clear-state",
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "torn-wal" in out and "clear-state" in out
    assert sorted((p, p.stat().st_mtime_ns) for p in tmp_path.rglob("*")) == before


def test_unknown_fault_is_a_usage_error(tmp_path: Path) -> None:
    path = reference_copy(tmp_path)
    assert run_cli("drill", "--contract", str(path), "--fault", "meteor") == 2


# ---------------------------------------------------------------- issue 11: backups, clear-state,
# seeds, history


def _drill_contract(tmp_path: Path, state: str = "state") -> Path:
    """A drill contract without services: enough for the backup loop, plans and path rules."""
    return write_contract(tmp_path, f"""
        [contract]
        name = "drill-unit"
        version = "1.0.0"

        [durability]
        state_dirs = ["{state}"]
        backup_dir = "backups"

        [[durability.databases]]
        path = "data/m.db"

        [durability.writer]
        base_url = "http://127.0.0.1:9"
        path = "/w"
        json = {{ key = "sentinel-{{{{seq}}}}" }}

        [evidence]
        dir = "evidence"
        """)


def test_the_gate_plans_once_and_a_plan_runs_only_on_its_contract(tmp_path: Path) -> None:
    from toolkit.core.errors import ContractError, DriftError
    from toolkit.gates.base import PROFILES
    from toolkit.gates.drill import DrillGate, run_plan

    path = _drill_contract(tmp_path)
    planned = DrillGate().plan(path, PROFILES["full"])
    assert planned.order[0] == "kill" and planned.faults == planned.order[-len(planned.faults):]
    assert planned.backup_dir == tmp_path / "backups"
    assert planned.databases == (tmp_path / "data" / "m.db",)
    again = drill_plan(DrillConfig(path, seed=planned.seed))
    assert again.to_dict() == planned.to_dict()  # the seed alone fixes the plan
    stale = dataclasses.replace(planned, contract_sha256="0" * 64)
    with pytest.raises(DriftError, match="changed after the drill was planned"):
        run_plan(stale)
    assert not (tmp_path / "evidence" / "drill").exists()  # refused before any run began
    (tmp_path / "nw").mkdir()
    no_writer = write_contract(tmp_path / "nw", """
        [contract]
        name = "nw"
        version = "1.0.0"
        [durability]
        rpo_s = 5
        """)
    with pytest.raises(ContractError, match=r"needs \[durability.writer\]"):
        drill_plan(DrillConfig(no_writer, seed=1))


def test_200_backups_are_named_uniquely_and_pruning_keeps_the_newest(tmp_path: Path) -> None:
    path = _drill_contract(tmp_path)
    (tmp_path / "data").mkdir()
    db = _db(tmp_path / "data" / "m.db", rows=10)
    c = load_locked(path)
    with gate_run(c, "drill", "gate4") as run:
        d = Drill(make_plan(DrillConfig(path, backup_interval_s=0.001), c), c, run)
        stop = threading.Event()
        loop = d.continuous(stop)
        conn = sqlite3.connect(db)
        n = 10
        while len(d.backups_taken) < 200:  # a writer keeps the data moving under the backups
            conn.execute("INSERT INTO memory VALUES (?, 'v')", (f"sentinel-{n}",))
            conn.commit()
            n += 1
            time.sleep(0.001)
        stop.set()
        loop.join(10)
        conn.close()
        taken = d.backups_taken
        assert len(taken) >= 200 and len(set(taken)) == len(taken)  # never a reused name
        assert sorted(taken) == taken  # names sort in the order they were taken
        on_disk = sorted(str(p) for p in (d.backup_root / "m.db").glob("*.sqlite"))
        assert on_disk == taken[-KEEP_BACKUPS:] == [str(b.file) for b in d.backups]  # newest N kept
        counts = [len(rsql.verify(Path(f), PATTERN, 0, 10**6).sentinels) for f in on_disk]
        assert counts == sorted(counts) and counts[-1] > 10  # the newest holds the most data
        assert d.prove_restorable()["m.db"]["backup"] == taken[-1]
        run.evidence.abandon()


def test_symlinked_state_dir_is_refused_before_resolving(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("keep me")
    (tmp_path / "state").symlink_to(outside)
    path = _drill_contract(tmp_path)
    (tmp_path / "data").mkdir()
    _db(tmp_path / "data" / "m.db", rows=5)
    assert run_cli("drill", "--dry-run", "--contract", str(path), "--fault", "clear-state") == 2
    assert (
        run_cli("drill", "--contract", str(path), "--fault", "clear-state", "--warmup", "0.2s") == 2
    )
    assert (outside / "precious.txt").read_text() == "keep me"


def test_snapshot_restores_contents_links_and_folder_modes(tmp_path: Path) -> None:
    root = tmp_path / "state"
    (root / "deep" / "er").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "deep" / "er" / "f.txt").write_text("data")
    (root / "secret").write_text("s")
    os.chmod(root / "secret", 0o600)
    (root / "link").symlink_to("deep/er/f.txt")
    os.chmod(root / "deep", 0o750)
    os.chmod(root / "empty", 0o700)
    snapshot([root], tmp_path / "snap", set())
    assert clear_tree(root) > 0
    restore_snapshot([root], tmp_path / "snap", set())
    assert (root / "deep" / "er" / "f.txt").read_text() == "data"
    assert os.readlink(root / "link") == "deep/er/f.txt"
    assert (root / "empty").is_dir()
    assert stat.S_IMODE((root / "deep").stat().st_mode) == 0o750
    assert stat.S_IMODE((root / "empty").stat().st_mode) == 0o700
    assert stat.S_IMODE((root / "secret").stat().st_mode) == 0o600


def test_unknown_fault_in_a_dry_run_is_a_clear_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _drill_contract(tmp_path)
    assert run_cli("drill", "--dry-run", "--contract", str(path), "--fault", "nosuch") == 2
    err = capsys.readouterr().err
    assert "nosuch" in err and "known faults" in err and "corrupt-page" in err
    assert "internal error" not in err


def test_dry_run_prints_its_seed_and_a_given_seed_reproduces_the_plan(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _drill_contract(tmp_path)
    assert run_cli("drill", "--dry-run", "--contract", str(path)) == 0
    out = capsys.readouterr().out
    seed = int(re.search(r"seed (\d+)", out).group(1))  # type: ignore[union-attr]
    faults = re.search(r"faults (.*)", out).group(1)  # type: ignore[union-attr]
    assert run_cli("drill", "--dry-run", "--contract", str(path), "--seed", str(seed)) == 0
    again = capsys.readouterr().out
    assert f"seed {seed}" in again and f"faults {faults}" in again
    assert plan(DrillConfig(path, seed=seed))[1] == f"faults {faults}"


def test_history_row_without_rto_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _drill_contract(tmp_path)
    c = load_locked(path)
    history_path(c).parent.mkdir(parents=True, exist_ok=True)  # the lock's ledger may be there
    with sqlite3.connect(history_path(c)) as conn:
        conn.execute("CREATE TABLE drills (run_id TEXT PRIMARY KEY, at TEXT, faults TEXT, "
                     "rpo_s REAL, rto_s REAL, lost INTEGER, verdict TEXT)")
        conn.execute("INSERT INTO drills VALUES ('r1', '2026-01-01', 'kill', 0.4, NULL, 3, 'fail')")
    start_history(c, "r2", ["kill"], 1)  # a drill that never got sealed
    assert run_cli("drill", "history", "--contract", str(path)) == 0
    capsys.readouterr()
    assert run_cli("drill", "history", "--contract", str(path), "--json") == 0
    rows = json.loads(capsys.readouterr().out)["drills"]
    assert [(r["run_id"], r["rto_s"], r["verdict"]) for r in rows] == [("r1", None, "fail"),
                                                                       ("r2", None, "running")]


KILL_AT = """
import os, sys
from toolkit.gates import drill
from toolkit.core import evidence
where = sys.argv[1]
if where == "inject":
    original = drill.Drill.inject
    def inject(self):
        out = original(self)
        os.kill(os.getpid(), 9)
    drill.Drill.inject = inject
else:  # the moment the run starts to seal
    def finalize(self, verdict, body):
        os.kill(os.getpid(), 9)
    evidence.EvidenceRun.finalize = finalize
from toolkit.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _kill_at(where: str, *argv: str) -> int:
    proc = subprocess.run(
        [sys.executable, "-c", KILL_AT, where, *argv],
        cwd=REPO,
        capture_output=True,
        timeout=120,
        check=False,
    )
    return proc.returncode


@pytest.mark.slow
def test_kill_9_right_after_clear_state_is_undone_by_the_next_drill(tmp_path: Path) -> None:
    path, ports = reference_on_free_ports(tmp_path)
    notes = tmp_path / "state" / "notes"
    notes.mkdir(parents=True)
    (notes / "a.txt").write_text("operator notes")
    os.chmod(notes / "a.txt", 0o600)
    os.chmod(notes, 0o750)
    code = _kill_at(
        "inject",
        "drill",
        "--contract",
        str(path),
        "--fault",
        "clear-state",
        "--warmup",
        "1s",
        "--seed",
        "3",
    )
    assert code == -9 and not notes.exists()  # killed with the state cleared, before any recovery
    result = run_drill(DrillConfig(path, ["kill"], seed=5, warmup_s=1.0))
    assert (notes / "a.txt").read_text() == "operator notes"
    assert stat.S_IMODE(notes.stat().st_mode) == 0o750
    assert stat.S_IMODE((notes / "a.txt").stat().st_mode) == 0o600
    assert result.verdict == "pass", result.body
    journal = (result.summary_path.parent / "journal.jsonl").read_text()
    assert "drill.resume" in journal
    assert listening(ports) == []


@pytest.mark.slow
def test_history_never_says_pass_for_a_run_killed_while_sealing(tmp_path: Path) -> None:
    path, ports = reference_on_free_ports(tmp_path)
    code = _kill_at("seal", "drill", "--contract", str(path), "--fault", "kill", "--warmup", "1s")
    assert code == -9
    rows = read_history(load_locked(path))
    assert len(rows) == 1 and rows[0][-1] != "pass"
    assert listening(ports) == []


@pytest.mark.slow
def test_warmup_10s_through_the_cli(tmp_path: Path) -> None:
    path, ports = reference_on_free_ports(tmp_path)
    assert run_cli("drill", "--contract", str(path), "--fault", "kill", "--fault", "corrupt-header",
                   "--warmup", "10s") == 0
    assert read_history(load_locked(path))[-1][-1] == "pass"
    assert listening(ports) == []


@pytest.mark.slow
def test_60s_warmup_with_200_backups_and_a_seed_that_reproduces(tmp_path: Path) -> None:
    path, ports = reference_on_free_ports(tmp_path)
    seed = 424242
    planned = plan(DrillConfig(path, seed=seed))[1]
    result = run_drill(DrillConfig(path, seed=seed, warmup_s=60.0, backup_interval_s=0.05))
    b = result.body
    assert result.verdict == "pass", b
    assert b["seed"] == seed and planned == f"faults {', '.join(b['faults'])}"
    assert b["backups_taken"] >= 200
    manifest = json.loads((result.summary_path.parent / "gate4-backup-manifest.json").read_text())
    assert len(manifest["backups"]) == KEEP_BACKUPS
    assert listening(ports) == []


def test_an_interrupted_drills_record_is_finished_by_the_next_one(tmp_path: Path) -> None:
    db = _db(tmp_path / "m.db", rows=50)
    rsql.backup(db, tmp_path / "b.sqlite")
    good = rsql.verify(tmp_path / "b.sqlite").logical_hash
    state = tmp_path / "state"
    (state / "sub").mkdir(parents=True)
    (state / "sub" / "f.txt").write_text("x")
    (state / "newer.txt").write_text("old")
    snapshot([state], tmp_path / "snap", set())
    clear_tree(state)  # the fault ...
    (state / "newer.txt").write_text("written after the drill")  # ... and a file that came later
    db.write_bytes(b"not a database" * 100)
    folder = tmp_path / "backups" / "run1"
    rec = pending.write(
        folder,
        {
            "run_id": "run1",
            "state_dirs": [str(state)],
            "exclude": [],
            "snapshot": str(tmp_path / "snap"),
            "databases": {str(db): {"file": str(tmp_path / "b.sqlite"), "logical_hash": good}},
        },
    )
    assert pending.interrupted(tmp_path / "backups") == []  # its owner (this process) is alive
    doc = json.loads(rec.read_text())
    rec.write_text(
        json.dumps({**doc, "owner_started": 0.0})
    )  # the owner as a dead process would be
    assert pending.interrupted(tmp_path / "backups") == [rec]
    out = pending.resume(rec, lambda *a, **k: None)
    assert (state / "sub" / "f.txt").read_text() == "x"
    assert (state / "newer.txt").read_text() == "written after the drill"  # never overwritten
    assert rsql.verify(db).logical_hash == good and "restored" in out["databases"][str(db)]
    assert not rec.exists()
