"""`toolkit gates`: every gate in the seed's order, stopping at the first that does not pass."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from toolkit.errors import ToolkitError
from toolkit.runner import GateResult


@dataclass
class Step:
    gate: str
    verdict: str
    exit_code: int
    evidence: str
    note: str = ""


@dataclass(frozen=True)
class Profile:
    cycles: int
    health_s: float
    interval_s: float
    soak_s: float | None  # None: the contract's own [soak].duration
    soak_warmup_s: float | None
    window_s: float


PROFILES = {
    # quick: the same logic, scaled down to minutes; full: the seed's figures
    "quick": Profile(3, 5.0, 1.0, 30.0, 5.0, 5.0),
    "full": Profile(10, 1800.0, 5.0, None, None, 60.0),
}


def plan(contract_path: Path | None, profile: str) -> list[tuple[str, Callable[[], GateResult]]]:
    from toolkit.attack import AttackConfig, run_attacks
    from toolkit.cycle import CycleConfig, run_cycle
    from toolkit.determinism import DeterminismConfig, run_determinism
    from toolkit.drill import DrillConfig, run_drill
    from toolkit.soak import SoakConfig, run_soak

    p = PROFILES[profile]
    return [
        ("cycle", lambda: run_cycle(CycleConfig(contract_path, p.cycles, p.health_s, p.interval_s))),
        ("soak", lambda: run_soak(SoakConfig(contract_path, p.soak_s, p.soak_warmup_s, p.window_s))),
        ("attack", lambda: run_attacks(AttackConfig(contract_path))[0]),
        ("secrets", lambda: _secrets(contract_path)),
        ("drill", lambda: run_drill(DrillConfig(contract_path))),
        ("determinism", lambda: run_determinism(DeterminismConfig(contract_path))),
    ]


def _secrets(contract_path: Path | None) -> GateResult:
    from toolkit.secrets_gate import run_secrets_gate
    from toolkit.secrets_scan import ScanConfig

    scan, where = run_secrets_gate(ScanConfig(), contract_path, ("json", "sarif", "junit"), None)
    return GateResult(scan.verdict, scan.to_dict(), where)


def run_all(contract_path: Path | None, profile: str, progress: Callable[[Step], None]) -> list[Step]:
    steps: list[Step] = []
    for gate, go in plan(contract_path, profile):
        try:
            result = go()
            step = Step(gate, result.verdict, result.exit_code, str(result.summary_path or ""))
        except ToolkitError as exc:
            step = Step(gate, "error", exc.exit_code, "", str(exc))
        steps.append(step)
        progress(step)
        if step.verdict != "pass":
            break  # no gate advances past an unresolved failure
    return steps
