"""Gate 5: the same suite N times under a locked environment, the same outcome per test.

Per-test outcomes come from JUnit XML: the command's ``{{junit}}`` placeholder, or
``--junitxml`` appended when the command runs pytest. Without either, a run's only
outcome is its exit code. The environment each run gets is recorded (hashed).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import subprocess  # nosec B404 - the contract's test command is the job
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from xml.etree import ElementTree as ET  # nosec B405 - parsing JUnit our own runs just wrote

from toolkit.core.contract import Contract, expand
from toolkit.core.errors import ContractError, TargetError, UsageError
from toolkit.core.events import EnvLocked, ProbeDone, ProbeStarted, RunsCompared
from toolkit.core.runner import GateResult, GateRun, Subscriber, gate_run, load_locked
from toolkit.core.supervisor import Supervisor
from toolkit.gates.base import Profile

LOCKED_ENV = {"PYTHONHASHSEED": "0", "TZ": "UTC", "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8",
              "TOOLKIT_DETERMINISM_RUN": "1"}


@dataclass
class DeterminismConfig:
    contract_path: Path | None = None
    runs: int | None = None
    start_stack: bool = True
    timeout_s: float = 1800.0


@dataclass
class RunOutcome:
    index: int
    exit_code: int
    seconds: float
    tests: dict[str, str] = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for outcome in self.tests.values():
            out[outcome] = out.get(outcome, 0) + 1
        return out

    @property
    def failed(self) -> list[str]:
        return sorted(t for t, o in self.tests.items() if o in ("failed", "error"))

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.index, "exit_code": self.exit_code, "seconds": round(self.seconds, 3),
                "counts": self.counts, "failed_tests": self.failed, "tests": self.tests}


def parse_junit(path: Path) -> dict[str, str]:
    """testcase id -> passed | failed | error | skipped."""
    try:
        root = ET.parse(path).getroot()  # nosec B314 - our own run's report
    except (OSError, ET.ParseError) as exc:
        raise TargetError(f"{path}: the test run wrote no readable JUnit XML ({exc})") from None
    tests = {}
    for case in root.iter("testcase"):
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed"}.get(child.tag, child.tag)
        tests[name] = outcome
    return tests


def build_command(c: Contract, junit: Path) -> list[str]:
    spec = c.need(c.determinism, "determinism", "determinism")
    argv = [str(a) for a in expand(list(spec.command), {**c.base_vars(), "junit": str(junit)})]
    if not any(str(junit) in a for a in argv) and any("pytest" in a for a in argv):
        argv.append(f"--junitxml={junit}")
    return argv


def locked_env(c: Contract) -> tuple[dict[str, str], str]:
    env = {
        **os.environ,
        **LOCKED_ENV,
        **expand(c.env, c.base_vars()),
        "TOOLKIT_CONTRACT": str(c.path),
    }
    fingerprint = hashlib.sha256(json.dumps({k: env[k] for k in sorted({*LOCKED_ENV, *c.env})},
                                            sort_keys=True).encode()).hexdigest()
    return env, fingerprint


def run_once(
    c: Contract, run: GateRun, index: int, env: dict[str, str], timeout: float
) -> RunOutcome:
    junit = run.evidence.dir / f"gate5-run{index}-junit.xml"
    argv = build_command(c, junit)
    cwd = c.resolve(c.need(c.determinism, "determinism", "determinism").cwd)
    run.emit(ProbeStarted(index, argv))
    t0 = time.monotonic()
    # a scratch file, not a pipe: whatever the suite leaves running cannot hold the run open;
    # the output goes into the evidence through the ProbeDone event
    with tempfile.TemporaryFile() as out:
        try:
            proc = subprocess.run(argv, cwd=cwd, env=env, stdout=out,  # nosec B603
                                  stderr=subprocess.STDOUT, timeout=timeout, check=False)
        except FileNotFoundError:
            raise ContractError(f"determinism.command: {argv[0]!r} not found") from None
        except subprocess.TimeoutExpired:
            run.emit(ProbeDone(index, _read(out), None))
            raise TargetError(
                f"determinism run {index} did not finish within {timeout:g} s") from None
        output = _read(out)
    outcome = RunOutcome(index, proc.returncode, time.monotonic() - t0)
    try:
        if any(str(junit) in a for a in argv):
            outcome.tests = parse_junit(junit)  # a report promised and missing is an error
        else:
            outcome.tests = {"<exit code>": "passed" if proc.returncode == 0 else "failed"}
    except TargetError:
        run.emit(ProbeDone(index, output, None))
        raise
    run.emit(ProbeDone(index, output, outcome.to_dict()))
    return outcome


def _read(scratch: IO[bytes]) -> bytes:
    scratch.seek(0)
    return scratch.read()


def compare(outcomes: list[RunOutcome]) -> dict[str, Any]:
    names = sorted({t for o in outcomes for t in o.tests})
    diverging = {t: [o.tests.get(t, "missing") for o in outcomes] for t in names
                 if len({o.tests.get(t, "missing") for o in outcomes}) > 1}
    first = outcomes[0]
    return {"tests": len(names), "diverging_tests": diverging,
            "pass_counts": [o.counts.get("passed", 0) for o in outcomes],
            "fail_counts": [o.counts.get("failed", 0) + o.counts.get("error", 0) for o in outcomes],
            "failed_sets_equal": all(o.failed == first.failed for o in outcomes),
            "exit_codes": [o.exit_code for o in outcomes], "identical": not diverging}


def judge(outcomes: list[RunOutcome], expected: set[str]) -> dict[str, Any]:
    """Every run must pass every test (the seed asks 100%), except declared expected failures.

    A run's exit code must be 0 too, unless the only failures in it were expected ones: a suite
    whose command fails without naming a failing test does not pass either.
    """
    unexpected = {o.index: [t for t in o.failed if t not in expected] for o in outcomes}
    unexpected = {k: v for k, v in unexpected.items() if v}
    bad_exit = [o.index for o in outcomes if o.exit_code != 0 and not (o.failed and
                                                                      set(o.failed) <= expected)]
    passed_anyway = sorted({t for o in outcomes for t in expected if o.tests.get(t) == "passed"})
    unknown = sorted(expected - {t for o in outcomes for t in o.tests})
    return {"unexpected_failures": unexpected, "failing_exit_codes": bad_exit,
            "expected_failures": sorted(expected), "expected_failures_that_passed": passed_anyway,
            "expected_failures_not_run": unknown}


def run_determinism(cfg: DeterminismConfig, subscribers: Sequence[Subscriber] = ()) -> GateResult:
    c = load_locked(cfg.contract_path)
    spec = c.need(c.determinism, "determinism", "determinism")
    runs = spec.runs if cfg.runs is None else cfg.runs  # --runs 0 is an error, not "default"
    if runs < 2:
        raise UsageError(f"--runs {runs}: determinism needs at least 2 runs")
    expected = set(spec.expected_failures)
    with gate_run(c, DeterminismGate.name, DeterminismGate.label, subscribers=subscribers) as run:
        from reports.evidence_files import DeterminismEvidenceWriter

        DeterminismEvidenceWriter(run).attach(run.bus)
        env, fingerprint = locked_env(c)
        run.emit(EnvLocked(fingerprint, sorted({*LOCKED_ENV, *c.env})))
        sup = None
        try:
            if cfg.start_stack and c.services:
                sup = Supervisor(
                    c,
                    marker=f"det-{secrets.token_hex(4)}",
                    log_dir=run.evidence.dir / "service-logs",
                    on_event=run.emit,
                )
                sup.start_all()
            outcomes = [run_once(c, run, i, env, cfg.timeout_s) for i in range(1, runs + 1)]
        finally:
            if sup is not None:
                sup.stop_all()
                sup.close()
        comparison = {**compare(outcomes), **judge(outcomes, expected)}
        run.emit(RunsCompared(comparison))
        return run.seal(
            _verdict(comparison),
            {
                "runs": runs,
                "env_sha256": fingerprint,
                **comparison,
                "measurements": _measurements(comparison),
            },
        )


def _verdict(cmp: dict[str, Any]) -> str:
    ok = (cmp["identical"] and cmp["tests"] > 0 and not cmp["unexpected_failures"]
          and not cmp["failing_exit_codes"])
    return "pass" if ok else "fail"


def _measurements(cmp: dict[str, Any]) -> list[dict[str, Any]]:
    diverging = len(cmp["diverging_tests"])
    failing = len({t for names in cmp["unexpected_failures"].values() for t in names})
    return [
        {
            "metric": "diverging_tests",
            "value": diverging,
            "threshold": 0,
            "unit": "tests",
            "verdict": "pass" if diverging == 0 else "fail",
            "samples": cmp["tests"],
        },
        {
            "metric": "tests_failing_unexpectedly",
            "value": failing,
            "threshold": 0,
            "unit": "tests",
            "verdict": "pass" if failing == 0 and not cmp["failing_exit_codes"] else "fail",
            "samples": cmp["tests"],
            "detail": f"runs with a failing exit code: {cmp['failing_exit_codes']}",
        },
        {
            "metric": "tests",
            "value": cmp["tests"],
            "threshold": 1,
            "unit": "tests",
            "verdict": "pass" if cmp["tests"] > 0 else "fail",
            "samples": cmp["tests"],
        },
    ]


class DeterminismGate:
    """Gate 5: the contract's test command, N runs, the same results every time."""

    name, title, label = "determinism", "Gate 5", "gate5"
    needs = ("determinism",)

    def plan(self, contract_path: Path | None, profile: Profile) -> DeterminismConfig:
        return DeterminismConfig(contract_path)

    def describe(self, c: Contract) -> list[str]:
        spec = c.need(c.determinism, "determinism", "determinism")
        argv = build_command(c, c.evidence_dir / "gate5-runN-junit.xml")
        cwd = c.resolve(spec.cwd)
        return [f"run {spec.runs} times in {cwd}: {' '.join(argv)}"]

    def run(self, plan: DeterminismConfig) -> GateResult:
        return run_determinism(plan)
