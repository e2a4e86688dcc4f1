"""Evidence store: manifest accepted by sha256sum -c, tamper detection, journal chain, kill -9."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import run_cli
from toolkit.core.evidence import EvidenceRun, verify_run

INFO = {"name": "demo", "version": "1.0.0", "sha256": "0" * 64}


def sealed(tmp_path: Path) -> Path:
    run = EvidenceRun(tmp_path, "cycle", "gate1", INFO)
    for i in range(5):
        run.journal("tick", i=i)
    run.log("hello")
    run.write_json("detail.json", {"x": 1})
    run.finalize("pass", {"measurements": []})
    return run.dir


def test_sealed_run_verifies_and_sha256sum_accepts(tmp_path: Path) -> None:
    folder = sealed(tmp_path)
    assert verify_run(folder) == []
    assert run_cli("verify", str(tmp_path)) == 0
    if shutil.which("sha256sum"):
        out = subprocess.run(["sha256sum", "-c", "manifest.sha256"], cwd=folder,
                             capture_output=True, text=True, check=False)
        assert out.returncode == 0, out.stdout + out.stderr
    summary = json.loads(next(folder.glob("gate1-summary-*.json")).read_text())
    assert summary["verdict"] == "pass" and summary["schema_version"] == 1
    assert summary["contract"]["sha256"] == "0" * 64 and summary["end"]


@pytest.mark.parametrize("how", ["change", "add", "remove", "journal-edit", "journal-drop"])
def test_tampering_is_named(tmp_path: Path, how: str, capsys: pytest.CaptureFixture[str]) -> None:
    folder = sealed(tmp_path)
    journal = folder / "journal.jsonl"
    if how == "change":
        (folder / "detail.json").write_text('{"x": 2}')
        expect = "changed: detail.json"
    elif how == "add":
        (folder / "extra.txt").write_text("x")
        expect = "added: extra.txt"
    elif how == "remove":
        (folder / "detail.json").unlink()
        expect = "removed: detail.json"
    elif how == "journal-edit":
        lines = journal.read_text().splitlines()
        lines[2] = lines[2].replace('"i": 1', '"i": 9')
        journal.write_text("\n".join(lines) + "\n")
        expect = "broken link"
    else:
        lines = journal.read_text().splitlines()
        del lines[3]
        journal.write_text("\n".join(lines) + "\n")
        expect = "broken link"
    problems = verify_run(folder)
    assert any(expect in p for p in problems), problems
    assert run_cli("verify", str(folder)) == 1
    assert expect in capsys.readouterr().err


def test_verify_missing_path_exits_2(tmp_path: Path) -> None:
    assert run_cli("verify", str(tmp_path / "nothing")) == 2


WRITER = """
import sys, time
from pathlib import Path
from toolkit.core.evidence import EvidenceRun
run = EvidenceRun(Path(sys.argv[1]), "cycle", "gate1", {"name": "d", "version": "1", "sha256": "0"})
print(run.dir, flush=True)
i = 0
while True:
    run.journal("tick", i=i)
    i += 1
    if i % 50 == 0:
        run.finalize("pass", {})
        run = EvidenceRun(Path(sys.argv[1]), "cycle", "gate1",
                          {"name": "d", "version": "1", "sha256": "0"})
"""


@pytest.mark.parametrize("delay", [0.05, 0.2, 0.45])
def test_kill_9_never_leaves_a_pass_without_a_valid_seal(tmp_path: Path, delay: float) -> None:
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE,
                            cwd=Path(__file__).resolve().parent.parent)
    assert proc.stdout is not None
    proc.stdout.readline()
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    runs = [p for p in (tmp_path / "cycle").iterdir()]
    assert runs
    for folder in runs:
        summaries = list(folder.glob("gate1-summary-*.json"))
        assert len(summaries) <= 1  # never a torn or second summary
        if not summaries:  # killed between mkdir and the first write: nothing claims anything
            assert verify_run(folder)
            continue
        verdict = json.loads(summaries[0].read_text())["verdict"]
        if verdict == "pass":
            assert verify_run(folder) == [], folder
        else:
            assert verdict == "incomplete"


def test_a_file_name_that_is_not_utf8_is_signed_verified_and_bundled(tmp_path: Path) -> None:
    import os

    from toolkit.gates.release import deterministic_tar, scan_bundle

    run = EvidenceRun(tmp_path, "drill", "gate4", INFO)
    odd = os.fsdecode(b"state-snapshot/canary-\x80\xff.txt")  # what a hostile target may leave
    run.write_bytes(odd, b"left behind")
    run.finalize("pass", {})
    assert verify_run(run.dir) == []
    (run.dir / odd).write_bytes(b"edited")
    problems = verify_run(run.dir)
    assert any(p.startswith("changed: bytes:state-snapshot/canary-%80%FF.txt") for p in problems)
    bundle = deterministic_tar([(f"drill/{run.dir.name}/{odd}", run.dir / odd)])
    assert scan_bundle(bundle) == []


@pytest.mark.parametrize("how", ["dev-zero", "fifo", "same-content-link", "journal-link",
                                 "signature-link", "dir-link"])
def test_planted_links_and_special_files_are_named_never_followed(
    tmp_path: Path, how: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A link to /dev/zero in a run used to hang verify (it hashed the endless stream); a link
    to a copy outside passed as unchanged. Each is named, none is opened, and verify ends."""
    import os

    folder = sealed(tmp_path / "ev")
    outside = tmp_path / "outside"
    outside.mkdir()
    name = {"journal-link": "journal.jsonl", "signature-link": "run.dsse.json",
            "dir-link": "sub"}.get(how, "detail.json")
    victim = folder / name
    if how == "same-content-link":
        shutil.copy(victim, outside / name)
        victim.unlink()
        victim.symlink_to(outside / name)
    elif how == "fifo":
        victim.unlink()
        os.mkfifo(victim)
    elif how == "dir-link":
        victim.symlink_to(outside)
    else:
        victim.unlink()
        victim.symlink_to("/dev/zero")
    started = time.monotonic()
    problems = verify_run(folder)
    assert any(f"not a plain file: {name}" in p for p in problems), problems
    assert run_cli("verify", str(folder)) == 1
    assert f"not a plain file: {name}" in " ".join(capsys.readouterr().err.split())
    assert time.monotonic() - started < 30
