"""The one shape every gate has: the `Gate` protocol, its result, and the run profiles.

A gate is a class in its own module under ``toolkit/gates/`` with a name (its evidence folder
and ledger name), the seed's label for it ("Gate 1"), the evidence label of its runs, the
contract sections it reads, a ``plan()`` that turns a contract path and a profile into the
run's typed configuration, a ``describe()`` that says what that run would do (``--dry-run``),
and a ``run()`` that returns a `GateResult`. `toolkit.gates.registry.GATES` lists them in the
seed's order; `toolkit gates`, `toolkit release` and the CLI read that list.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from toolkit.core.contract import Contract
from toolkit.core.model import Measurement
from toolkit.core.predicate import Verdict
from toolkit.core.runner import GateResult

__all__ = ["PROFILES", "Gate", "GateResult", "Measurement", "Profile", "Verdict"]


@dataclass(frozen=True)
class Profile:
    """How hard `toolkit gates` drives each gate: quick (minutes) or full (the contract's)."""

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


@runtime_checkable
class Gate(Protocol):
    """A release gate. Implement it in one module and add one line to the registry."""

    @property
    def name(self) -> str:
        """"cycle": its evidence folder, ledger gate and `toolkit gates` step."""
        ...

    @property
    def title(self) -> str:
        """The seed's label for it: "Gate 1"."""
        ...

    @property
    def label(self) -> str:
        """The evidence label of its runs: "gate1"."""
        ...

    @property
    def needs(self) -> tuple[str, ...]:
        """The contract sections it reads."""
        ...

    def plan(self, contract_path: Path | None, profile: Profile) -> Any:
        """The run's configuration under ``profile``; reads the contract, starts nothing."""
        ...

    def describe(self, c: Contract) -> list[str]:
        """What a run would do with this contract, touching nothing (``--dry-run``)."""
        ...

    def run(self, plan: Any) -> GateResult:
        """Run the gate; the result is sealed evidence, never a bare boolean."""
        ...
