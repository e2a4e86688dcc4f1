"""Files the toolkit creates are recorded first; a killed run's are removed by the next run, only
they.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli, write_contract
from toolkit.core import litter

KILLED = """
import os, sys
from pathlib import Path
from toolkit.core import litter
work = litter.temp_dir("toolkit-test-")
(work / "inside.txt").write_text("x")
f = litter.track(Path(sys.argv[1]) / ".toolkit-canary-recorded.env")
f.write_text("canary")
print(work, flush=True)
os.kill(os.getpid(), 9)
"""


@pytest.fixture
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("TOOLKIT_STATE_HOME", str(home))
    return home


def test_a_killed_runs_files_are_swept_and_nothing_else(tmp_path: Path, state_home: Path) -> None:
    folder = tmp_path / "state"
    folder.mkdir()
    mine = folder / ".toolkit-canary-not-recorded.env"  # same pattern, never recorded: not ours
    mine.write_text("user file")
    proc = subprocess.run(
        [sys.executable, "-c", KILLED, str(folder)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "TOOLKIT_STATE_HOME": str(state_home)},
    )
    assert proc.returncode == -9
    work = Path(proc.stdout.strip())
    assert work.is_dir() and (folder / ".toolkit-canary-recorded.env").exists()
    removed = litter.sweep()
    assert sorted(removed) == sorted([str(work), str(folder / ".toolkit-canary-recorded.env")])
    assert not work.exists() and not (folder / ".toolkit-canary-recorded.env").exists()
    assert mine.read_text() == "user file"
    assert list((state_home / "created").iterdir()) == []
    assert litter.sweep() == []


def test_a_live_runs_files_are_left_alone(tmp_path: Path, state_home: Path) -> None:
    work = litter.temp_dir("toolkit-test-")
    try:
        assert litter.sweep() == [] and work.is_dir()  # our own ledger: the owner is alive
    finally:
        litter.remove_tree(work)
    assert not work.exists() and list((state_home / "created").iterdir()) == []


KILL_SECRETS = """
import os, sys
from toolkit.gates import secrets_scan
def detect(files, *args, **kwargs):
    os.kill(os.getpid(), 9)  # killed while the canaries are planted
secrets_scan.detect = detect
secrets_scan.detect_plain = detect
from toolkit.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_canaries_and_temp_folders_of_a_killed_secrets_scan_are_gone_after_the_next_run(
        tmp_path: Path, state_home: Path) -> None:
    scanned = tmp_path / "state" / "config"
    scanned.mkdir(parents=True)
    (scanned / "app.toml").write_text("debug = false\n")
    path = write_contract(tmp_path, """
        [contract]
        name = "litter"
        version = "1.0.0"

        [secrets]
        scan = ["state/config"]
        code = []
        """)
    before = set(Path(tempfile.gettempdir()).glob("toolkit-secrets-*"))
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            KILL_SECRETS,
            "secrets",
            "scan",
            "--contract",
            str(path),
            "--no-bandit",
        ],
        cwd=REPO,
        capture_output=True,
        check=False,
        env={**os.environ, "TOOLKIT_STATE_HOME": str(state_home)},
    )
    assert proc.returncode == -9, proc.stderr
    # canaries are planted in the run's own temp folder, never in the user's tree ...
    assert [p for p in scanned.rglob("*") if p.name != "app.toml"] == []
    left = set(Path(tempfile.gettempdir()).glob("toolkit-secrets-*")) - before
    assert left  # ... and the killed run's temp folder (with its canary) is left behind
    assert any(f.is_file() for d in left for f in d.rglob("*")), "no canary was planted"
    assert run_cli("secrets", "scan", "--contract", str(path), "--no-bandit") == 0
    assert list(scanned.glob(".toolkit-canary-*")) == []
    assert not any(p.exists() for p in left)
    assert (scanned / "app.toml").read_text() == "debug = false\n"
