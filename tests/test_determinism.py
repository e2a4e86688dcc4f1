"""Gate 5: identical outcomes pass; a flaky test fails the gate by name; bad input exits 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import REPO, reference_copy, run_cli, write_contract
from toolkit.core import contract as contract_mod
from toolkit.gates.determinism import DeterminismConfig, run_determinism

FLAKY = """
from pathlib import Path

COUNTER = Path(__file__).with_name("counter.txt")


def test_stable():
    assert 1 + 1 == 2


def test_flaky():
    n = int(COUNTER.read_text()) if COUNTER.exists() else 0
    COUNTER.write_text(str(n + 1))
    assert n % 2 == 0  # passes on the first run, fails on the second
"""


def _suite(tmp_path: Path, text: str) -> Path:
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_suite.py").write_text(text)
    return write_contract(tmp_path, f"""
        [contract]
        name = "det"
        version = "1.0.0"

        [env]  # a one-file suite needs no plugin: ~1 s less CPU per run (hypothesis, pyfakefs)
        PYTEST_DISABLE_PLUGIN_AUTOLOAD = "1"

        [determinism]
        command = ["{{{{python}}}}", "-m", "pytest", "{suite}", "-q", "-p", "no:cacheprovider"]
        runs = 2
        cwd = "{tmp_path}"
        """)


def test_a_flaky_test_fails_the_gate_by_name(tmp_path: Path) -> None:
    result = run_determinism(DeterminismConfig(_suite(tmp_path, FLAKY)))
    assert result.verdict == "fail" and result.exit_code == 1
    diverging = result.body["diverging_tests"]
    assert list(diverging) == ["suite.test_suite::test_flaky"]
    assert diverging["suite.test_suite::test_flaky"] == ["passed", "failed"]
    assert result.body["pass_counts"] == [2, 1]
    comparison = json.loads(
        (result.summary_path.parent / "gate5-determinism-comparison.json").read_text()
    )
    assert comparison["identical"] is False


def test_a_stable_suite_passes_three_times(tmp_path: Path) -> None:
    stable = ("def test_a():\n    assert len('ab') == 2\n\n"
              "def test_b():\n    assert sorted({3, 1, 2}) == [1, 2, 3]\n")
    result = run_determinism(DeterminismConfig(_suite(tmp_path, stable), runs=3))
    assert result.verdict == "pass" and result.body["pass_counts"] == [2, 2, 2]


def test_missing_section_and_bad_runs_exit_2(tmp_path: Path) -> None:
    path = write_contract(tmp_path, '[contract]\nname = "x"\nversion = "1.0.0"\n')
    assert run_cli("determinism", "--contract", str(path)) == 2
    (tmp_path / "s").mkdir()
    suite = _suite(tmp_path / "s", "def test_a():\n    pass\n")
    assert run_cli("determinism", "--contract", str(suite), "--runs", "1") == 2
    assert run_cli("determinism", "--contract", str(suite), "--runs", "0") == 2  # not "default"


@pytest.mark.slow
def test_reference_integration_suite_is_deterministic(tmp_path: Path) -> None:
    path = reference_copy(tmp_path)
    result = run_determinism(DeterminismConfig(path))
    assert result.verdict == "pass", result.body["diverging_tests"]
    assert result.body["tests"] == 8 and result.body["pass_counts"] == [8, 8]
    assert (REPO / "tests" / "integration").is_dir()


ALL_FAIL = "def test_a():\n    assert False\n\ndef test_b():\n    assert 1 == 2\n"
ONE_FAILS = "def test_ok():\n    pass\n\ndef test_known_bug():\n    assert False\n"


def test_a_suite_where_every_test_fails_does_not_pass(tmp_path: Path) -> None:
    result = run_determinism(DeterminismConfig(_suite(tmp_path, ALL_FAIL)))
    assert result.body["identical"] is True  # the same outcome every time ...
    assert result.verdict == "fail" and result.exit_code == 1  # ... but the seed asks for 100% pass
    both = ["suite.test_suite::test_a", "suite.test_suite::test_b"]
    assert result.body["unexpected_failures"] == {1: both, 2: both}


def test_one_failing_test_fails_the_gate_unless_declared_expected(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    result = run_determinism(DeterminismConfig(_suite(tmp_path / "a", ONE_FAILS)))
    assert result.verdict == "fail"
    (tmp_path / "b").mkdir()
    path = _suite(tmp_path / "b", ONE_FAILS)
    text = path.read_text().replace(
        "runs = 2", 'runs = 2\nexpected_failures = ["suite.test_suite::test_known_bug"]'
    )
    path.write_text(text.replace('version = "1.0.0"', 'version = "1.0.1"'))  # a changed contract
    contract_mod.write_lock(contract_mod.load(path))
    result = run_determinism(DeterminismConfig(path))
    assert result.verdict == "pass", result.body
    assert result.body["expected_failures"] == ["suite.test_suite::test_known_bug"]


def test_a_failing_command_without_junit_does_not_pass(tmp_path: Path) -> None:
    path = write_contract(tmp_path, f"""
        [contract]
        name = "det"
        version = "1.0.0"

        [determinism]
        command = ["{{{{python}}}}", "-c", "raise SystemExit(3)"]
        cwd = "{tmp_path}"
        """)
    assert run_cli("determinism", "--contract", str(path)) == 1
