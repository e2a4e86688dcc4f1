"""Typed events. Gate runs emit them on a :class:`Bus`; the journal, report and evidence
writers and progress displays subscribe. Gates never write reports.

Every event is a frozen dataclass deriving from :class:`Event`. ``kind`` names its journal
entry and ``payload()`` is the entry's data, so the journal reads the same as when events
were strings. ``journaled = False`` marks the events that only feed a writer or a display
(file contents, progress ticks): the journal leaves them out.

Handlers subscribe to every event (``Bus.subscribe``) and dispatch on the type, or to one
type and its subclasses (``Bus.on``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

if TYPE_CHECKING:
    from toolkit.core.model import Finding
    from toolkit.core.runner import GateResult


@dataclass(frozen=True)
class Event:
    """The base of every event."""

    kind: ClassVar[str] = "event"
    journaled: ClassVar[bool] = True

    def payload(self) -> dict[str, Any]:
        """The journal entry's data: the fields by name, unless a subclass says otherwise."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


E = TypeVar("E", bound=Event)
Handler = Callable[[Event], None]


class Bus:
    """Delivers each event to its handlers in the order they subscribed."""

    def __init__(self) -> None:
        self._handlers: list[tuple[type[Event], Callable[[Any], None]]] = []

    def subscribe(self, handler: Handler) -> None:
        """``handler`` gets every event."""
        self._handlers.append((Event, handler))

    def on(self, kind: type[E], handler: Callable[[E], None]) -> None:
        """``handler`` gets the events of type ``kind`` (subclasses included)."""
        self._handlers.append((kind, handler))

    def emit(self, event: Event) -> None:
        if not isinstance(event, Event):
            raise TypeError(f"Bus.emit takes an Event, not {type(event).__name__}")
        for kind, handler in self._handlers:
            if isinstance(event, kind):
                handler(event)


# ------------------------------------------------------------------ every gate run

@dataclass(frozen=True)
class GateStarted(Event):
    """The run is open (evidence folder, journal, ledger attempt); its subscribers attached.

    Not journaled: the journal's own ``run.start`` entry says the same."""

    kind = "gate.started"
    journaled = False
    gate: str
    run_id: str
    evidence_dir: str


@dataclass(frozen=True)
class LitterSwept(Event):
    """What killed runs created and never removed, swept before this run."""

    kind = "litter.swept"
    paths: list[str]


@dataclass(frozen=True)
class GateFinished(Event):
    """After the seal (never journaled: the journal is sealed): the typed result."""

    kind = "gate.finished"
    journaled = False
    result: GateResult


# ------------------------------------------------------------------ supervisor

@dataclass(frozen=True)
class SupervisorReclaimed(Event):
    kind = "supervisor.reclaimed"
    killed: list[int]
    file: str
    not_signalled: list[dict[str, Any]]
    cgroup_killed: list[int]


@dataclass(frozen=True)
class CgroupsRemoved(Event):
    """Empty per-run cgroups that toolkits killed before their run file was written."""

    kind = "supervisor.cgroups_removed"
    cgroups_removed: list[str]


@dataclass(frozen=True)
class ServiceSpawned(Event):
    kind = "service.spawned"
    service: str
    pid: int
    argv: list[str]


@dataclass(frozen=True)
class ServiceHealthy(Event):
    kind = "service.healthy"
    service: str
    seconds: float


@dataclass(frozen=True)
class ServiceLogCut(Event):
    """A service's log outgrew its cap; ``log`` holds the figures (bytes seen, dropped...)."""

    kind = "service.log_cut"
    service: str
    log: dict[str, Any]

    def payload(self) -> dict[str, Any]:
        return {"service": self.service, **self.log}


@dataclass(frozen=True)
class ServiceStopped(Event):
    kind = "service.stopped"
    service: str
    seconds: float
    escalated: bool
    exit_code: int | None
    leftovers: list[dict[str, Any]]
    exit_ok: bool
    log: dict[str, Any] | None


# ------------------------------------------------------------------ Gate 1: cycle

@dataclass(frozen=True)
class CycleStarted(Event):
    """Progress: cycle ``cycle`` of ``count`` begins; checks so far."""

    kind = "cycle.started"
    journaled = False
    cycle: int
    count: int
    passed: int
    failed: int


@dataclass(frozen=True)
class CyclePhase(Event):
    """Progress: what the cycle is doing now (starting, stopping, proving clean)."""

    kind = "cycle.phase"
    journaled = False
    phase: str


@dataclass(frozen=True)
class ChecksCounted(Event):
    """Progress: health checks passed and failed so far."""

    kind = "cycle.checks"
    journaled = False
    passed: int
    failed: int


@dataclass(frozen=True)
class LeftoverFound(Event):
    """Something a stop left behind; ``item`` says what (pid, cmdline, check...)."""

    kind = "cycle.leftover"
    item: dict[str, Any]

    def payload(self) -> dict[str, Any]:
        return dict(self.item)


@dataclass(frozen=True)
class ZombieFound(LeftoverFound):
    kind = "cycle.zombies"


@dataclass(frozen=True)
class OrphanFound(LeftoverFound):
    kind = "cycle.orphans"


@dataclass(frozen=True)
class ListenerFound(LeftoverFound):
    kind = "cycle.listeners"


@dataclass(frozen=True)
class CycleFailure(Event):
    kind = "cycle.failure"
    reason: str


@dataclass(frozen=True)
class CycleDone(Event):
    """Before the seal: the verdict and the body the summary will hold."""

    kind = "cycle.done"
    verdict: str
    run_id: str
    contract: str
    body: dict[str, Any]

    def payload(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "run_id": self.run_id, "contract": self.contract,
                **self.body}


# ------------------------------------------------------------------ Gate 2: soak

@dataclass(frozen=True)
class MinuteWindow(Event):
    """A soak window closed: its full document and its headline figures (the journal's)."""

    kind = "soak.window"
    index: int
    document: dict[str, Any]
    headline: dict[str, Any]

    def payload(self) -> dict[str, Any]:
        return dict(self.headline)


@dataclass(frozen=True)
class SoakAborted(Event):
    kind = "soak.abort"
    window: int
    reason: str


@dataclass(frozen=True)
class SoakDone(Event):
    kind = "soak.done"
    verdict: str
    run_id: str
    contract: str
    window_s: float
    duration_s: float
    seed: int
    abort_reason: str | None
    generator_saturated: str | None
    measurements: list[dict[str, Any]]


# ------------------------------------------------------------------ Gate 3: attack

@dataclass(frozen=True)
class CanariesRecovered(Event):
    kind = "canaries.recovered"
    removed: list[str]


@dataclass(frozen=True)
class CanariesRemoved(Event):
    kind = "canaries.removed"
    problems: list[str]


@dataclass(frozen=True)
class SurfaceUnreachable(Event):
    kind = "surface.unreachable"
    surface: str
    notes: list[str]


@dataclass(frozen=True)
class SurfaceBaseline(Event):
    kind = "surface.baseline"
    surface: str
    form: str
    payload_repr: str
    status: int | None
    tried: list[Any]

    def payload(self) -> dict[str, Any]:
        return {"surface": self.surface, "form": self.form, "payload": self.payload_repr,
                "status": self.status, "tried": self.tried}


@dataclass(frozen=True)
class TargetCrashed(Event):
    kind = "target.crashed"
    surface: str
    how: str
    streak: int


@dataclass(frozen=True)
class CaseStarted(Event):
    kind = "attack.start"
    attack_id: str
    surface: str


@dataclass(frozen=True)
class FindingMade(Event):
    kind = "finding"
    finding: Finding

    def payload(self) -> dict[str, Any]:
        return self.finding.to_dict()


@dataclass(frozen=True)
class CaseFinished(Event):
    kind = "attack.case"
    attack_id: str
    title: str
    surface: str
    status: str  # vulnerable | clean | skipped | error
    sent: int
    findings: int
    notes: list[str]
    unanswered: int = 0  # requests that got no reply in time, even on a fresh connection
    dropped: int = 0  # requests the live target hung up on without a reply
    retried: int = 0  # requests answered only on a fresh connection


@dataclass(frozen=True)
class TranscriptMade(Event):
    """A finding's exchange, redacted; ``path`` is relative to the evidence folder."""

    kind = "attack.transcript"
    journaled = False
    path: str
    text: bytes


@dataclass(frozen=True)
class ToolFingerprints(Event):
    """The MCP tools' fingerprints seen, per server (what the next run compares against)."""

    kind = "attack.tool_fingerprints"
    journaled = False
    listings: dict[str, dict[str, str]]


@dataclass(frozen=True)
class AttackDone(Event):
    kind = "attack.done"
    verdict: str
    budget: str
    seed: int
    pacing: dict[str, Any] | None = None  # rate limit and concurrency, asked and really used


# ------------------------------------------------------------------ Gate 3d: secrets

@dataclass(frozen=True)
class SecretsDone(Event):
    """The scan's result document (``ScanResult.to_dict()``, plus the scope in a gate run)."""

    kind = "secrets.done"
    report: dict[str, Any]

    def payload(self) -> dict[str, Any]:
        return dict(self.report)


# ------------------------------------------------------------------ Gate 4: drill, chaos

@dataclass(frozen=True)
class DrillPlanned(Event):
    """The drill's plan (``DrillPlan.to_dict()``): the journal entry is the plan itself."""

    kind = "drill.plan"
    plan: dict[str, Any]

    def payload(self) -> dict[str, Any]:
        return dict(self.plan)

    @property
    def faults(self) -> list[str]:
        return list(self.plan["faults"])

    @property
    def seed(self) -> int:
        return int(self.plan["seed"])


@dataclass(frozen=True)
class DrillResumed(Event):
    """What an interrupted drill promised and this run finished (or why it could not)."""

    kind = "drill.resume"
    record: dict[str, Any]

    def payload(self) -> dict[str, Any]:
        return dict(self.record)


@dataclass(frozen=True)
class BackupsRestorable(Event):
    """Per database, the backup proven to restore before anything destructive."""

    kind = "drill.restorable"
    proofs: dict[str, Any]

    def payload(self) -> dict[str, Any]:
        return dict(self.proofs)


@dataclass(frozen=True)
class Checkpointed(Event):
    kind = "drill.checkpoint"
    db: str
    result: list[Any] | None


@dataclass(frozen=True)
class CheckpointFailed(Event):
    kind = "drill.checkpoint"
    db: str
    error: str


@dataclass(frozen=True)
class DrillStep(Event):
    """A fault injector's step; ``kind`` names it (inject, verify, rollback, dry run)."""

    fault: str


@dataclass(frozen=True)
class FaultDryRun(DrillStep):
    kind = "chaos.dry_run"
    would: str


@dataclass(frozen=True)
class FaultInjected(DrillStep):
    kind = "chaos.inject"
    what: str


@dataclass(frozen=True)
class BackupsCorrupted(DrillStep):
    kind = "chaos.inject"
    files: list[str]


@dataclass(frozen=True)
class FaultVerified(DrillStep):
    kind = "chaos.verify"
    took_effect: bool


@dataclass(frozen=True)
class FaultRolledBack(DrillStep):
    kind = "chaos.rollback"
    result: dict[str, Any]

    def payload(self) -> dict[str, Any]:
        return {"fault": self.fault, "ok": True, "result": self.result}


@dataclass(frozen=True)
class RollbackFailed(DrillStep):
    kind = "chaos.rollback"
    error: str

    def payload(self) -> dict[str, Any]:
        return {"fault": self.fault, "ok": False, "error": self.error}


@dataclass(frozen=True)
class DrillDisaster(Event):
    kind = "drill.disaster"
    at: float
    acknowledged: int


@dataclass(frozen=True)
class WriterFailed(Event):
    """The sentinel writer could not make a write (e.g. it could not sign it): the first
    reason, and how many such writes came before the disaster."""

    kind = "drill.writer_error"
    reason: str
    before_disaster: int


@dataclass(frozen=True)
class RpoRto(Event):
    """The drill's measured figures, before the seal."""

    kind = "drill.measured"
    journaled = False
    disaster_at: float
    recovered_at: float
    rpo_s: float | None
    rto_s: float | None
    acknowledged: int
    surviving: int
    lost: int
    writer_failures: int
    writer_errors_before_disaster: int
    writer_first_error: str | None


@dataclass(frozen=True)
class DrillRecorded(Event):
    """Before the seal: the backups taken and what recovery found (two evidence files)."""

    kind = "drill.recorded"
    journaled = False
    backup_manifest: dict[str, Any]
    recovery_results: dict[str, Any]


# ------------------------------------------------------------------ Gate 5: determinism

@dataclass(frozen=True)
class EnvLocked(Event):
    kind = "determinism.env"
    sha256: str
    locked: list[str]


@dataclass(frozen=True)
class ProbeStarted(Event):
    """Run ``run`` of the test command starts."""

    kind = "determinism.run"
    run: int
    argv: list[str]


@dataclass(frozen=True)
class ProbeDone(Event):
    """Run ``run`` ended: its output (stdout and stderr) and its outcome, or None when it
    did not finish."""

    kind = "determinism.run_done"
    journaled = False
    run: int
    output: bytes
    outcome: dict[str, Any] | None


@dataclass(frozen=True)
class RunsCompared(Event):
    kind = "determinism.compared"
    journaled = False
    comparison: dict[str, Any]
