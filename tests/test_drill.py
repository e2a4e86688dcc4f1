"""Gate 4: path rules (pyfakefs), corruption recipes on real SQLite files, torn WAL, full drills."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from chaos.base import FaultContext, run_injector
from chaos.faults import FILE_FAULTS, ClearState, TornWal, clear_tree
from recovery import sqlite as rsql
from tests.conftest import REPO, contract_ports, listening, reference_copy, run_cli
from toolkit.drill import DrillConfig, run_drill, sentinel_pattern
from toolkit.errors import SafetyError

PATTERN = re.compile(r"sentinel-(\d+)")


def _ctx(dbs: list[Path], dirs: list[Path], seed: int = 7) -> FaultContext:
    return FaultContext(seed, dbs, dirs, dict, lambda *a, **k: None)


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
    conn.executemany("INSERT INTO memory VALUES (?, ?)", [(f"sentinel-{i}", "v" * 40) for i in range(rows)])
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
    detected = not after.ok or after.logical_hash != before.logical_hash or after.sentinels != before.sentinels
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


# ---------------------------------------------------------------- full drills on the reference stack

@pytest.mark.slow
def test_reference_drill_passes_with_measured_rpo_and_rto(tmp_path: Path) -> None:
    path = reference_copy(tmp_path)
    result = run_drill(DrillConfig(path, ["kill", "corrupt-page"], seed=11, warmup_s=2.0, backup_interval_s=0.5))
    b = result.body
    assert result.verdict == "pass", b
    assert b["integrity_ok"] and b["healthy"] and b["acknowledged_writes"] >= 1
    # measured, not raced: how fast a loaded machine writes or recovers is evidence, not a verdict
    folder = result.summary_path.parent
    _assert_measurements_consistent(b, folder)
    for name in ("gate4-backup-manifest.json", "gate4-recovery-results.json", "gate4-rpo-rto-measurements.txt"):
        assert (folder / name).is_file()
    assert run_cli("verify", str(folder)) == 0
    assert run_cli("drill", "history", "--contract", str(path)) == 0
    assert listening(contract_ports(path)) == []


def _assert_measurements_consistent(b: dict[str, Any], folder: Path) -> None:
    """RPO, RTO and lost writes are present, sane, and the same in the body, the measurement
    list and the text file; lost writes are the acknowledged ones that did not survive."""
    ms = {m["metric"]: m for m in b["measurements"]}
    assert b["rpo_s"] is not None and b["rpo_s"] >= 0 and ms["rpo_s"]["value"] == round(b["rpo_s"], 3)
    assert b["rto_s"] is not None and b["rto_s"] > 0 and ms["rto_s"]["value"] == round(b["rto_s"], 3)
    assert ms["acknowledged_writes_lost"]["value"] == b["lost_writes"]
    text = dict(line.split("=", 1) for line in
                (folder / "gate4-rpo-rto-measurements.txt").read_text().splitlines())
    acked, surviving, lost = (int(text[k]) for k in ("acknowledged", "surviving", "lost"))
    assert acked == b["acknowledged_writes"] and lost == b["lost_writes"] == acked - surviving
    assert 0 <= lost <= acked and float(text["rpo_s"]) == pytest.approx(b["rpo_s"], abs=1e-3)
    assert float(text["recovered_at"]) - float(text["disaster_at"]) == pytest.approx(b["rto_s"], abs=2e-3)


@pytest.mark.slow
def test_a_corrupt_backup_fails_loudly(tmp_path: Path) -> None:
    path = reference_copy(tmp_path)
    result = run_drill(DrillConfig(path, ["corrupt-backup", "corrupt-header"], seed=3, warmup_s=1.5))
    assert result.verdict == "fail" and not result.body["integrity_ok"]
    rec = json.loads((result.summary_path.parent / "gate4-recovery-results.json").read_text())
    assert "no restorable backup" in json.dumps(rec["recovery"])


@pytest.mark.slow
def test_kill_9_of_the_toolkit_mid_drill_then_rerun(tmp_path: Path) -> None:
    path = reference_copy(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "toolkit", "drill", "--contract", str(path), "--fault", "kill",
                             "--warmup", "30s"], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "COLUMNS": "120"})
    backups = tmp_path / "artifacts" / "backups"
    deadline = time.monotonic() + 120  # a bound against hangs, not a speed requirement
    while len(list(backups.rglob("*.sqlite"))) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    files = list(backups.rglob("*.sqlite"))
    assert files and all(rsql.verify(f).ok for f in files)  # every backup on disk is complete and sound
    result = run_drill(DrillConfig(path, ["kill"], seed=5, warmup_s=1.5))
    assert result.verdict == "pass", result.body
    assert listening(contract_ports(path)) == []


def test_dry_run_touches_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = reference_copy(tmp_path)
    assert run_cli("drill", "--dry-run", "--contract", str(path), "--fault", "torn-wal", "--fault", "clear-state") == 0
    out = capsys.readouterr().out
    assert "torn-wal" in out and "clear-state" in out and not (tmp_path / "artifacts").exists()


def test_unknown_fault_is_a_usage_error(tmp_path: Path) -> None:
    path = reference_copy(tmp_path)
    assert run_cli("drill", "--contract", str(path), "--fault", "meteor") == 2
