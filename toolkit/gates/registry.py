"""The gates in the seed's order, and `toolkit gates`: run them, stopping at the first failure.

Adding a gate is one module implementing `toolkit.gates.base.Gate` and one line in `GATES`.
`toolkit gates`, `toolkit gates --dry-run`, `toolkit release` and `toolkit verify` read this list.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from toolkit.core.errors import ContractError, ToolkitError
from toolkit.core.predicate import PROFILE, Verdict
from toolkit.core.runner import GateResult, load_locked
from toolkit.gates.attack import AttackGate
from toolkit.gates.base import PROFILES, Gate, Profile
from toolkit.gates.cycle import CycleGate
from toolkit.gates.determinism import DeterminismGate
from toolkit.gates.drill import DrillGate
from toolkit.gates.secrets_gate import SecretsGate
from toolkit.gates.soak import SoakGate

__all__ = ["GATES", "PROFILES", "Profile", "Step", "Verdict", "by_name", "plan", "plan_gates",
           "run_all"]

GATES: tuple[Gate, ...] = (
    CycleGate(),
    SoakGate(),
    AttackGate(),
    SecretsGate(),
    DrillGate(),
    DeterminismGate(),
)


def by_name(name: str) -> Gate:
    for gate in GATES:
        if gate.name == name:
            return gate
    raise KeyError(name)


@dataclass
class Step:
    gate: str
    verdict: str
    exit_code: int
    evidence: str
    note: str = ""


def plan(contract_path: Path | None, profile: str) -> list[tuple[str, Callable[[], GateResult]]]:
    """Every gate's run, planned up front (a contract that cannot drive one fails here)."""
    p = PROFILES[profile]
    planned = [(gate, gate.plan(contract_path, p)) for gate in GATES]
    return [(gate.name, _runner(gate, cfg)) for gate, cfg in planned]


def _runner(gate: Gate, cfg: object) -> Callable[[], GateResult]:
    return lambda: gate.run(cfg)


def plan_gates(path: Path) -> dict[str, list[str]]:
    """`toolkit gates --dry-run`: every gate's plan; one the contract cannot drive says why."""
    c = load_locked(path)
    out: dict[str, list[str]] = {}
    for gate in GATES:
        try:
            out[gate.name] = gate.describe(c)
        except ContractError as exc:
            out[gate.name] = [f"cannot run: {exc}"]
    return out


def run_all(contract_path: Path | None, profile: str,
            progress: Callable[[Step], None]) -> list[Step]:
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
    step = Step(gate, result.verdict.value, result.exit_code, str(result.summary_path or ""))
    if result.verdict != Verdict.PASS:
        step.note = (f"blocker: gate {gate} {result.verdict}; fix its root cause and rerun "
                     "from gate start")
    return step
