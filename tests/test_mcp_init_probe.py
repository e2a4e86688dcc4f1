"""`contract init` probes each candidate surface's harmless baseline on the live server: a
tool whose backend is missing is excluded with its reason, the others are kept and attacked.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli
from toolkit.core import contract as contract_mod
from toolkit.gates.attack import AttackConfig, run_attacks

SERVER = "tests.targets.mcp_backend"


def _init(tmp_path: Path, *flags: str, server: tuple[str, ...] = ()) -> tuple[int, Path]:
    out = tmp_path / "init.toml"
    code = run_cli("contract", "init", "--mcp-stdio", "--sandbox", str(tmp_path / "ws"),
                   "--out", str(out), "--timeout", "20", *flags, "--",
                   sys.executable, "-m", SERVER, str(tmp_path / "ws"), *server)
    return code, out


@pytest.fixture(autouse=True)
def _path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(REPO))


def test_failing_tool_is_excluded_with_its_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _init(tmp_path)
    said = " ".join(capsys.readouterr().out.split())
    assert code == 0, said
    c = contract_mod.load(out)
    assert [s.name for s in c.surfaces] == ["read_file-path"]  # the working tool is kept
    text = out.read_text()
    excluded = text.split("excluded_surfaces", 1)[1]
    assert '# name = "apply_manifest-filename"' in excluded  # written, commented out
    reason = next(x for x in excluded.splitlines() if x.startswith("# reason:"))
    assert "ECONNREFUSED 127.0.0.1:6443" in reason and "none accepted" in reason
    assert "excluded apply_manifest-filename:" in said and "connection refused" in said
    assert "2 surfaces" in said and "1 excluded: no harmless call accepted" in said
    # nothing planted by the probe is left in the user's sandbox
    assert not [p for p in (tmp_path / "ws").iterdir() if p.name.startswith("toolkit-probe")]
    # the generated contract is attacked unchanged: no surface errors, the hardened tool clean
    result, cases = run_attacks(AttackConfig(out, ["traversal"]))
    assert result.body["errors"] == [] and result.exit_code == 0
    assert {c.surface for c in cases if c.sent} == {"read_file-path"}


def test_control_without_probe_the_failing_surface_is_an_attack_error(tmp_path: Path) -> None:
    """--keep-unverified writes every surface, and attack then fails on the unusable one:
    the negative control for the exclusion above.
    """
    code, out = _init(tmp_path, "--keep-unverified")
    assert code == 0
    assert "excluded_surfaces" not in out.read_text()
    names = {s.name for s in contract_mod.load(out).surfaces}
    assert names == {"read_file-path", "apply_manifest-filename"}
    result, _ = run_attacks(AttackConfig(out, ["traversal"]))
    assert result.exit_code == 2
    assert any("apply_manifest-filename" in e and "no harmless baseline" in e
               for e in result.body["errors"])


def test_all_failing_server_is_exit_2_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _init(tmp_path, server=("--all-down",))
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2 and not out.exists()
    assert "all 2 candidate surfaces" in err and "nothing `toolkit attack` could tell" in err
    assert "ECONNREFUSED" in err and "--keep-unverified" in err
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".init")]  # no trial


def test_a_tool_that_never_answers_does_not_hang_init(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    t0 = time.monotonic()
    code, out = _init(tmp_path, "--call-timeout", "1", "--probe-budget", "10",
                      server=("--hang",))
    took = time.monotonic() - t0
    both = capsys.readouterr()
    said = " ".join(both.out.split())
    assert code == 0, both.err
    assert took < 60, took  # the budget and one call timeout at most, plus start-up
    assert "excluded apply_manifest-filename" in said and "no reply" in said
    assert "gave no answer to tools/call within 1 s" in said
    # read_file is probed in what is left of the budget, or kept unprobed: never dropped
    kept = [s.name for s in contract_mod.load(out).surfaces]
    assert kept == ["read_file-path"]
