"""`toolkit gates`: every gate in the seed's order, stopping at the first that does not pass."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.core.errors import ToolkitError
from toolkit.core.predicate import PROFILE, Verdict
from toolkit.core.runner import GateResult

__all__ = ["PROFILES", "Profile", "Step", "Strength", "Verdict", "cycle_strength", "plan",
           "run_all"]


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
    # quick: the same logic, scaled down to minutes; full: the contract's [cycle] (else the seed's
    # 10 cycles, 30 min of health probes in all at 5 s) and the contract's own [soak].duration
    "quick": Profile(3, 5.0, 1.0, 30.0, 5.0, 5.0),
    "full": Profile(0, 0.0, 0.0, None, None, 60.0),
}


@dataclass(frozen=True)
class Strength:
    """Gate 1 at full strength, as the contract's [cycle] defines it."""

    count: int
    health_s: float
    interval_s: float
    startup_s: float | None


def cycle_strength(contract_path: Path | None) -> Strength:
    from toolkit.core import contract as contract_mod
    from toolkit.core.runner import default_contract_path

    c = contract_mod.load(contract_path or default_contract_path())
    return strength_of(c.raw)


def strength_of(raw: dict[str, Any]) -> Strength:
    cyc = raw.get("cycle", {})
    interval = cyc.get("interval", raw.get("defaults", {}).get("health_interval_s", 5.0))
    startup = cyc.get("startup_timeout_s")
    return Strength(int(cyc.get("count", 10)), float(cyc.get("health_duration", 1800.0)),
                    float(interval), None if startup is None else float(startup))


def plan(contract_path: Path | None, profile: str) -> list[tuple[str, Callable[[], GateResult]]]:
    from toolkit.gates.attack import AttackConfig, run_attacks
    from toolkit.gates.cycle import CycleConfig, run_cycle
    from toolkit.gates.determinism import DeterminismConfig, run_determinism
    from toolkit.gates.drill import DrillConfig, run_drill
    from toolkit.gates.soak import SoakConfig, run_soak

    p = PROFILES[profile]
    if not p.cycles:  # full strength comes from the contract
        full = cycle_strength(contract_path)
        cycle_cfg = CycleConfig(contract_path, full.count, full.health_s, full.interval_s,
                                full.startup_s)
    else:
        cycle_cfg = CycleConfig(contract_path, p.cycles, p.health_s, p.interval_s)
    return [
        ("cycle", lambda: run_cycle(cycle_cfg)),
        ("soak", lambda: run_soak(SoakConfig(contract_path, p.soak_s, p.soak_warmup_s, p.window_s))),
        ("attack", lambda: run_attacks(AttackConfig(contract_path))[0]),
        ("secrets", lambda: _secrets(contract_path)),
        ("drill", lambda: run_drill(DrillConfig(contract_path))),
        ("determinism", lambda: run_determinism(DeterminismConfig(contract_path))),
    ]


def _secrets(contract_path: Path | None) -> GateResult:
    from toolkit.gates.secrets_gate import run_secrets_gate
    from toolkit.gates.secrets_scan import ScanConfig

    scan, where = run_secrets_gate(ScanConfig(), contract_path, ("json", "sarif", "junit"), None)
    return GateResult(scan.verdict, scan.to_dict(), where)


def run_all(contract_path: Path | None, profile: str, progress: Callable[[Step], None]) -> list[Step]:
    steps: list[Step] = []
    token = PROFILE.set(profile)
    try:
        for gate, go in plan(contract_path, profile):
            step = _step(gate, go)
            steps.append(step)
            progress(step)
            if step.verdict != Verdict.PASS.value:
                break  # no gate advances past an unresolved failure
    finally:
        PROFILE.reset(token)
    return steps


def _step(gate: str, go: Callable[[], GateResult]) -> Step:
    from toolkit.core.ledger import GateBlocked

    try:
        result = go()
    except GateBlocked as exc:
        return Step(gate, "blocked", exc.exit_code, "", str(exc))
    except ToolkitError as exc:
        return Step(gate, Verdict.ERROR.value, exc.exit_code, "", str(exc))
    step = Step(gate, result.verdict, result.exit_code, str(result.summary_path or ""))
    if result.verdict != Verdict.PASS.value:
        step.note = (f"blocker: gate {gate} {result.verdict}; fix its root cause and rerun "
                     "from gate start")
    return step
