"""`toolkit gates` in order with a hard stop, and the release ceremony on real gate evidence."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from tests.conftest import reference_copy, run_cli, write_contract
from toolkit.gates import registry as gates_mod

pytestmark = pytest.mark.slow


@pytest.fixture
def tiny_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    quick = gates_mod.PROFILES["quick"]
    monkeypatch.setitem(
        gates_mod.PROFILES,
        "quick",
        dataclasses.replace(
            quick, cycles=1, health_s=1.0, soak_s=6.0, soak_warmup_s=2.0, window_s=1.0
        ),
    )
    monkeypatch.setitem(
        gates_mod.PROFILES, "full", dataclasses.replace(gates_mod.PROFILES["full"], window_s=2.0)
    )


def small_full_strength(tmp_path: Path) -> Path:
    """The reference stack, with a contract whose full strength is small: 2 cycles, seconds."""
    path = reference_copy(tmp_path)
    text = path.read_text()
    text = text.replace('health_duration = "30m"', 'health_duration = "2s"').replace(
        "count = 10", "count = 2"
    )
    text = text.replace('interval = "5s"', 'interval = "0.5s"')
    text = text.replace('duration = "48h"\nwarmup = "10m"', 'duration = "6s"\nwarmup = "2s"')
    # a changed contract is a new version, whatever the reference's own version is
    text = re.sub(
        r'^version = "([^"]+)"', r'version = "\1-small"', text, count=1, flags=re.MULTILINE
    )
    assert '-small"' in text
    assert 'duration = "6s"' in text and "count = 2" in text
    return write_contract(tmp_path, text)


def test_genuine_full_strength_sequence_releases_and_verifies(
    tmp_path: Path, tiny_profile: None, capsys: pytest.CaptureFixture[str]
) -> None:
    path = small_full_strength(tmp_path)
    key = tmp_path / "release.pem"
    assert run_cli("release", "keygen", str(key)) == 0
    out = tmp_path / "out"
    args = [
        "release",
        "--contract",
        str(path),
        "--key",
        str(key),
        "--signer",
        "Test Lead, QA",
        "--out",
        str(out),
    ]
    assert run_cli(*args) == 1 and not out.exists()  # no evidence yet: blocked, nothing written

    steps = gates_mod.run_all(path, "full", lambda step: None)
    assert [(s.gate, s.verdict) for s in steps] == [
        (g, "pass") for g in ("cycle", "soak", "attack", "secrets", "drill", "determinism")
    ]
    capsys.readouterr()
    assert run_cli(*args) == 0, capsys.readouterr().err
    rc1 = out / "RELEASE_CANDIDATE_1"
    checklist = (rc1 / "RELEASE_CHECKLIST.md").read_text()
    assert (
        "Gate 1 (cycle): PASSED" in checklist and "2/2 cycles, 0 zombies, 24/24 checks" in checklist
    )
    assert "Release Candidate 1: APPROVED FOR GA\nSign-off: Test Lead/QA - " in checklist
    assert run_cli("release", "verify", str(rc1), "--trust", str(key) + ".pub") == 0
    assert run_cli("verify", str(tmp_path / "artifacts" / "phase3")) == 0

    assert run_cli(*args) == 0  # candidate 2: same evidence, same bundle bytes, nothing overwritten
    assert (rc1 / "RELEASE_CANDIDATE_1_BUNDLE.tar.gz").read_bytes() == (
        out / "RELEASE_CANDIDATE_2" / "RELEASE_CANDIDATE_2_BUNDLE.tar.gz"
    ).read_bytes()

    drill_runs = sorted((tmp_path / "artifacts" / "phase3" / "drill").iterdir())
    (drill_runs[-1] / "gate4-rpo-rto-measurements.txt").write_text(
        "rpo_s=0.000\n"
    )  # someone improves a figure
    capsys.readouterr()
    assert run_cli(*args) == 1  # tampered evidence blocks the release
    assert "changed: gate4-rpo-rto-measurements.txt" in " ".join(capsys.readouterr().err.split())


def test_quick_profile_is_a_rehearsal_at_most(
    tmp_path: Path, tiny_profile: None, capsys: pytest.CaptureFixture[str]
) -> None:
    path = reference_copy(tmp_path)
    steps = gates_mod.run_all(path, "quick", lambda step: None)
    assert all(s.verdict == "pass" for s in steps) and len(steps) == 6
    key = tmp_path / "release.pem"
    run_cli("release", "keygen", str(key))
    args = [
        "release",
        "--contract",
        str(path),
        "--key",
        str(key),
        "--signer",
        "T, QA",
        "--out",
        str(tmp_path / "o"),
    ]
    capsys.readouterr()
    assert run_cli(*args) == 1
    err = capsys.readouterr().err
    assert "cycle: scaled down: 1 cycles, the contract's [cycle].count is 10" in " ".join(
        err.split()
    )
    assert run_cli(*args, "--rehearsal") == 0
    assert (tmp_path / "o" / "REHEARSAL_1" / "REHEARSAL_1_NOT_FOR_GA.txt").is_file()


def test_gates_stop_at_the_first_failure(
    tmp_path: Path, tiny_profile: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = reference_copy(tmp_path)
    monkeypatch.setenv("SONIA_WEAKEN", "shell")
    steps = gates_mod.run_all(path, "quick", lambda step: None)
    assert [s.gate for s in steps] == ["cycle", "soak", "attack"]
    assert steps[-1].verdict == "fail" and steps[-1].exit_code == 1
    assert "blocker: gate attack fail" in steps[-1].note


def test_release_verify_without_trust_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_contract(tmp_path, '[contract]\nname = "x"\nversion = "1.0.0"\n')
    assert run_cli("release", "verify", str(tmp_path)) == 2
    assert "needs a trusted public key" in capsys.readouterr().err


def test_keygen_refuses_links_and_existing_pub_and_bad_folders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A dangling or looping link is not replaced, an existing .pub is not overwritten, and an
    unwritable place is a one-paragraph error with exit code 2 (was an internal error)."""
    loop = tmp_path / "loop.pem"
    loop.symlink_to(tmp_path / "loop2.pem")
    (tmp_path / "loop2.pem").symlink_to(loop)
    dangling = tmp_path / "dangling.pem"
    dangling.symlink_to(tmp_path / "nowhere")
    old_pub = tmp_path / "k.pem.pub"
    old_pub.write_text("someone's key\n")
    for target in (loop, dangling, tmp_path / "k.pem"):
        assert run_cli("release", "keygen", str(target)) == 2
        assert "refusing to overwrite" in capsys.readouterr().err
    assert loop.is_symlink() and dangling.is_symlink()
    assert old_pub.read_text() == "someone's key\n" and not (tmp_path / "k.pem").exists()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert run_cli("release", "keygen", str(blocker / "sub" / "k.pem")) == 2
    err = capsys.readouterr().err
    assert "cannot write the release key" in err and "internal error" not in err
