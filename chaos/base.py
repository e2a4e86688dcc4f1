"""The injector extension point and the runner that guarantees rollback."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from toolkit.core.errors import SafetyError
from toolkit.core.events import (
    Event,
    FaultDryRun,
    FaultInjected,
    FaultRolledBack,
    FaultVerified,
    RollbackFailed,
)


@dataclass
class FaultContext:
    """What an injector may touch: declared paths and the running services."""

    seed: int
    databases: list[Path]
    state_dirs: list[Path]
    pids: Callable[[], dict[str, int]]
    journal: Callable[[Event], None]  # the run's bus: every step is an event
    dry_run: bool = False
    notes: list[str] = field(default_factory=list)

    def declared(self, path: Path) -> Path:
        """``path`` if the contract declares it (or it lies inside a declared folder), else
        SafetyError.
        """
        real = Path(path).absolute()
        for root in self.state_dirs + self.databases:
            r = Path(root).absolute()
            if real == r or r in real.parents:
                return real
        raise SafetyError(f"refusing to touch {path}: the contract does not declare it in "
                          f"[durability].state_dirs or [[durability.databases]]")


class Injector(Protocol):
    name: str

    def describe(self, ctx: FaultContext) -> str: ...
    def inject(self, ctx: FaultContext) -> dict[str, Any]: ...
    def verify(self, ctx: FaultContext) -> bool: ...
    def rollback(self, ctx: FaultContext) -> dict[str, Any]: ...


def run_injector(inj: Injector, ctx: FaultContext) -> dict[str, Any]:
    """inject, verify, and always rollback (in finally); every step is journaled."""
    what = inj.describe(ctx)
    if ctx.dry_run:
        ctx.journal(FaultDryRun(inj.name, what))
        return {"fault": inj.name, "dry_run": True, "would": what}
    ctx.journal(FaultInjected(inj.name, what))
    outcome: dict[str, Any] = {"fault": inj.name, "what": what}
    try:
        outcome["inject"] = inj.inject(ctx)
        outcome["took_effect"] = inj.verify(ctx)
        ctx.journal(FaultVerified(inj.name, outcome["took_effect"]))
    finally:
        try:
            outcome["rollback"] = inj.rollback(ctx)
            ctx.journal(FaultRolledBack(inj.name, outcome["rollback"]))
        except Exception as exc:  # noqa: BLE001 - a failed rollback is recorded, never hidden
            outcome["rollback"] = {"error": f"{type(exc).__name__}: {exc}"}
            ctx.journal(RollbackFailed(inj.name, str(exc)))
    return outcome
