"""`toolkit gates` in order with a hard stop, and the release ceremony on real gate evidence."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tests.conftest import reference_copy, run_cli
from toolkit import gates as gates_mod

pytestmark = pytest.mark.slow


@pytest.fixture
def tiny_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    quick = gates_mod.PROFILES["quick"]
    monkeypatch.setitem(gates_mod.PROFILES, "quick",
                        dataclasses.replace(quick, cycles=1, health_s=1.0, soak_s=6.0, soak_warmup_s=2.0,
                                            window_s=1.0))


def test_gates_then_a_signed_reproducible_release(tmp_path: Path, tiny_profile: None) -> None:
    path = reference_copy(tmp_path)
    key = tmp_path / "release.pem"
    assert run_cli("release", "keygen", str(key)) == 0
    out = tmp_path / "rc1"
    args = ["release", "--contract", str(path), "--key", str(key), "--signer", "Test Lead, QA", "--out", str(out)]
    assert run_cli(*args) == 1 and not out.exists()  # no evidence yet: blocked, nothing written

    steps = gates_mod.run_all(path, "quick", lambda step: None)
    assert [(s.gate, s.verdict) for s in steps] == [(g, "pass") for g in
                                                    ("cycle", "soak", "attack", "secrets", "drill", "determinism")]
    assert run_cli(*args) == 0
    checklist = (out / "RELEASE_CHECKLIST.md").read_text()
    assert "Gate 1 (cycle): PASSED" in checklist and "Test Lead, QA" in checklist
    assert run_cli("release", "verify", str(out), "--trust", str(key) + ".pub") == 0
    first = (out / "release-bundle.tar.gz").read_bytes()
    assert run_cli(*args) == 0
    assert (out / "release-bundle.tar.gz").read_bytes() == first  # same evidence, same bytes

    other = tmp_path / "other.pem"
    assert run_cli("release", "keygen", str(other)) == 0
    assert run_cli("release", "verify", str(out), "--trust", str(other) + ".pub") == 1
    bundle = out / "release-bundle.tar.gz"
    bundle.write_bytes(bundle.read_bytes() + b"x")
    assert run_cli("release", "verify", str(out)) == 1

    drill_runs = sorted((tmp_path / "artifacts" / "phase3" / "drill").iterdir())
    (drill_runs[-1] / "gate4-rpo-rto-measurements.txt").write_text("rpo_s=0.000\n")  # someone improves a figure
    assert run_cli(*args) == 1  # tampered evidence blocks the release


def test_gates_stop_at_the_first_failure(tmp_path: Path, tiny_profile: None,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    path = reference_copy(tmp_path)
    monkeypatch.setenv("SONIA_WEAKEN", "shell")
    steps = gates_mod.run_all(path, "quick", lambda step: None)
    assert [s.gate for s in steps] == ["cycle", "soak", "attack"]
    assert steps[-1].verdict == "fail" and steps[-1].exit_code == 1
