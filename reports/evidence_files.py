"""The evidence files gates produce, written by subscribers to a gate run's events.

A gate emits what it measured; these writers put it into the run's evidence folder (so the
manifest and the signature cover it). Each ``attach(bus)`` subscribes by event type.
"""

from __future__ import annotations

from toolkit.core.events import (
    Bus,
    DrillRecorded,
    MinuteWindow,
    ProbeDone,
    RpoRto,
    RunsCompared,
    ToolFingerprints,
    TranscriptMade,
)
from toolkit.core.runner import GateRun


class _Writer:
    def __init__(self, run: GateRun):
        self.evidence = run.evidence


class MinuteMetricsWriter(_Writer):
    """Gate 2: ``metrics/gate2-metrics-minute-NNNN.json``, one per window as it closes."""

    def attach(self, bus: Bus) -> None:
        bus.on(MinuteWindow, self.window)

    def window(self, event: MinuteWindow) -> None:
        self.evidence.write_json(f"metrics/gate2-metrics-minute-{event.index:04d}.json",
                                 event.document)


class AttackEvidenceWriter(_Writer):
    """Gate 3: each finding's redacted transcript and the MCP tool fingerprints seen."""

    def attach(self, bus: Bus) -> None:
        bus.on(TranscriptMade, self.transcript)
        bus.on(ToolFingerprints, self.fingerprints)

    def transcript(self, event: TranscriptMade) -> None:
        self.evidence.write_bytes(event.path, event.text)

    def fingerprints(self, event: ToolFingerprints) -> None:
        import json

        self.evidence.write_bytes("mcp-tool-fingerprints.json",
                                  json.dumps(event.listings, indent=2, sort_keys=True).encode())


class DrillEvidenceWriter(_Writer):
    """Gate 4: the backup manifest, the recovery results and the RPO/RTO figures."""

    def attach(self, bus: Bus) -> None:
        bus.on(DrillRecorded, self.recorded)
        bus.on(RpoRto, self.figures)

    def recorded(self, event: DrillRecorded) -> None:
        self.evidence.write_json("gate4-backup-manifest.json", event.backup_manifest)
        self.evidence.write_json("gate4-recovery-results.json", event.recovery_results)

    def figures(self, e: RpoRto) -> None:
        text = (f"disaster_at={e.disaster_at:.3f}\nrecovered_at={e.recovered_at:.3f}\n"
                f"rpo_s={'none survived' if e.rpo_s is None else f'{e.rpo_s:.3f}'}\n"
                f"rto_s={'not recovered' if e.rto_s is None else f'{e.rto_s:.3f}'}\n"
                f"acknowledged={e.acknowledged}\nsurviving={e.surviving}\nlost={e.lost}\n"
                f"writer_failures={e.writer_failures}\n"
                f"writer_errors_before_disaster={e.writer_errors_before_disaster}\n"
                f"writer_first_error={e.writer_first_error or 'none'}\n")
        self.evidence.write_bytes("gate4-rpo-rto-measurements.txt", text.encode())


class DeterminismEvidenceWriter(_Writer):
    """Gate 5: each run's output and results, and the comparison of the runs."""

    def attach(self, bus: Bus) -> None:
        bus.on(ProbeDone, self.run_done)
        bus.on(RunsCompared, self.compared)

    def run_done(self, event: ProbeDone) -> None:
        self.evidence.write_bytes(f"gate5-run{event.run}-output.txt", event.output)
        if event.outcome is not None:
            self.evidence.write_json(f"gate5-run{event.run}-results.json", event.outcome)

    def compared(self, event: RunsCompared) -> None:
        self.evidence.write_json("gate5-determinism-comparison.json", event.comparison)
