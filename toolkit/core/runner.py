"""The one gate runner: lock check, evidence run, event journal, a sealed verdict.

Cycling, attack, recovery and determinism gates all run inside :class:`GateRun`, so
each gets the same guarantees: no gate runs on a drifted contract, every journaled event
(see ``toolkit.core.events``) lands in the chained journal, an exception or Ctrl-C seals
the run as "error"/"interrupted" and never as a pass.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from toolkit.core import contract as contract_mod
from toolkit.core import platform
from toolkit.core.errors import ContractError, Interrupted, ToolkitError
from toolkit.core.events import Bus, Event, GateFinished, GateStarted, LitterSwept
from toolkit.core.evidence import EvidenceRun
from toolkit.core.model import Measurement
from toolkit.core.predicate import Verdict

REPO_ROOT = Path(__file__).resolve().parents[2]
Subscriber = Callable[[Bus], None]  # attaches its handlers to a run's bus before the run starts


def default_contract_path() -> Path:
    """--contract, else $TOOLKIT_CONTRACT, else ./contracts/boot_contract.toml, else the embedded
    one.
    """
    env = os.environ.get("TOOLKIT_CONTRACT")
    if env:
        return Path(env)
    local = Path("contracts/boot_contract.toml")
    if local.is_file():
        return local
    embedded = REPO_ROOT / "contracts" / "boot_contract.toml"
    if embedded.is_file():
        return embedded
    raise ContractError(
        "no contract given and no contracts/boot_contract.toml here; pass --contract PATH"
    )


def load_locked(path: Path | None) -> contract_mod.Contract:
    c = contract_mod.load(path or default_contract_path())
    contract_mod.require_lock(c)
    return c


def contract_info(c: contract_mod.Contract) -> dict[str, Any]:
    return {"name": c.name, "version": c.version, "sha256": c.sha256, "path": str(c.path)}


@dataclass
class GateResult:
    """What every gate's ``run()`` returns: a verdict, its measurements, the sealed evidence."""

    verdict: Verdict  # a plain "pass" etc. is converted
    body: dict[str, Any] = field(default_factory=dict)
    summary_path: Path | None = None

    def __post_init__(self) -> None:
        self.verdict = Verdict.of(self.verdict)

    @property
    def measurements(self) -> list[Measurement]:
        """The body's measurements, typed (gates that measure put them under "measurements")."""
        names = {f.name for f in fields(Measurement)}
        return [Measurement(**{k: v for k, v in m.items() if k in names})
                for m in self.body.get("measurements", []) if isinstance(m, dict)]

    @property
    def exit_code(self) -> int:
        return {"pass": 0, "fail": 1, "interrupted": 130}.get(self.verdict, 2)


class GateRun:
    """Evidence, journal and event bus for one gate run."""

    def __init__(self, c: contract_mod.Contract, gate: str, label: str, scope: str = "contract",
                 subscribers: Sequence[Subscriber] = ()):
        from toolkit.core.ledger import Ledger, check_attempt_allowed
        from toolkit.core.predicate import PROFILE

        self.contract = c
        self.seed = secrets.randbits(32)
        self.ledger = Ledger(c.evidence_dir)
        if scope == "contract":  # an ad hoc run (explicit paths) is evidence, not a gate attempt
            check_attempt_allowed(self.ledger, gate, c.name, c.version)
        self.evidence = EvidenceRun(c.evidence_dir, gate, label, contract_info(c), c.env)
        self.ledger.append("attempt.start", durable=False, run_id=self.evidence.run_id, gate=gate,
                           contract=contract_info(c), profile=PROFILE.get(), scope=scope)
        self.bus = Bus()
        self.bus.subscribe(self._journal)
        for attach in subscribers:
            attach(self.bus)
        self.result = GateResult(Verdict.ERROR)

    def _journal(self, event: Event) -> None:
        if event.journaled:
            self.evidence.journal(event.kind, **event.payload())

    def emit(self, event: Event) -> None:
        self.bus.emit(event)

    def log(self, message: str) -> None:
        self.evidence.log(message)

    def seal(self, verdict: str, body: dict[str, Any]) -> GateResult:
        from toolkit.core.predicate import parameters

        body = {"seed": self.seed, **body}
        try:
            path = self.evidence.finalize(verdict, body)
            self.ledger.append("attempt.end", run_id=self.evidence.run_id,
                               gate=self.evidence.gate, verdict=verdict,
                               digest=self.evidence.digest, start=self.evidence.started,
                               end=self.evidence.ended,
                               parameters=parameters(self.evidence.gate, body))
            self.result = GateResult(Verdict.of(verdict), body, path)
        finally:  # a seal that failed says so too: an unsealed result (no summary path)
            self.bus.emit(GateFinished(self.result))
        return self.result


@contextmanager
def gate_run(c: contract_mod.Contract, gate: str, label: str, scope: str = "contract",
             subscribers: Sequence[Subscriber] = ()) -> Iterator[GateRun]:
    """Run a gate; anything that escapes seals the run as error or interrupted, never pass.

    ``subscribers`` (progress displays, writers the caller chose) attach to the run's bus
    right after the journal, before the first event.
    """
    from toolkit.core import litter

    swept = litter.sweep()  # what killed runs created and never removed (by recorded name only)
    run = GateRun(c, gate, label, scope, subscribers)
    run.log(
        f"gate {gate} run {run.evidence.run_id} contract {c.name} {c.version} sha256 {c.sha256}"
    )
    run.emit(GateStarted(gate, run.evidence.run_id, str(run.evidence.dir)))
    if swept:
        run.emit(LitterSwept(swept))
    try:
        with platform.stop_signals_as_interrupt():
            yield run
    except (KeyboardInterrupt, Interrupted):
        run.log("interrupted by the user")
        run.seal("interrupted", {"error": "interrupted by the user"})
        raise Interrupted(f"{gate}: interrupted; evidence in {run.evidence.dir} says so") from None
    except ToolkitError as exc:
        run.log(f"error: {exc}")
        run.seal("error", {"error": str(exc)})
        raise
    except BaseException as exc:
        run.log(f"tool error: {type(exc).__name__}: {exc}")
        run.seal("error", {"error": f"{type(exc).__name__}: {exc}"})
        raise
