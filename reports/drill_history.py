"""The drill history (``drill-history.sqlite`` beside the evidence), kept by a subscriber.

A row says "running" from the drill's plan event until the run is sealed (``GateFinished``),
so a killed drill never reads as a pass; ``toolkit drill --history`` reads it.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from toolkit.core.contract import Contract
from toolkit.core.errors import EvidenceError
from toolkit.core.events import Bus, DrillPlanned, GateFinished
from toolkit.core.runner import GateResult

SCHEMA = ("CREATE TABLE IF NOT EXISTS drills (run_id TEXT PRIMARY KEY, at TEXT, faults TEXT, "
          "rpo_s REAL, rto_s REAL, lost INTEGER, verdict TEXT)")


class DrillHistory:
    """Subscribes to one drill run: its plan opens the row, its seal closes it."""

    def __init__(self, c: Contract, run_id: str):
        self.c, self.run_id = c, run_id

    def attach(self, bus: Bus) -> None:
        bus.on(DrillPlanned, lambda e: start_history(self.c, self.run_id, e.faults, e.seed))
        bus.on(GateFinished, lambda e: finish_history(self.c, self.run_id, e.result))


def history_path(c: Contract) -> Path:
    return c.evidence_dir / "drill-history.sqlite"


def _history(c: Contract) -> sqlite3.Connection:
    path = history_path(c)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=10)
    conn.execute(SCHEMA)
    return conn


def start_history(c: Contract, run_id: str, faults: list[str], seed: int) -> None:
    """A row that says "running" until the run is sealed; a killed drill never reads as a pass."""
    try:
        with _history(c) as conn:
            conn.execute(
                "INSERT OR REPLACE INTO drills VALUES (?, ?, ?, NULL, NULL, NULL, 'running')",
                (run_id, datetime.now(UTC).isoformat(timespec="seconds"), ",".join(faults)),
            )
    except sqlite3.Error as exc:
        raise EvidenceError(
            f"{history_path(c)}: cannot record the drill in its history: {exc}"
        ) from None


def finish_history(c: Contract, run_id: str, result: GateResult) -> None:
    """After the seal: the sealed verdict and figures (an unsealed run is never recorded as
    pass).
    """
    verdict = result.verdict if result.summary_path is not None else "error"
    b = result.body
    try:
        with _history(c) as conn:
            conn.execute(
                "UPDATE drills SET rpo_s = ?, rto_s = ?, lost = ?, verdict = ? WHERE run_id = ?",
                (b.get("rpo_s"), b.get("rto_s"), b.get("lost_writes"), verdict, run_id),
            )
    except (sqlite3.Error, OSError):
        pass  # the sealed evidence is the record; the history table is a convenience


def read_history(c: Contract) -> list[tuple[Any, ...]]:
    path = history_path(c)
    if not path.exists():
        return []
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            return conn.execute(
                "SELECT run_id, at, faults, rpo_s, rto_s, lost, verdict FROM drills ORDER BY at"
            ).fetchall()
    except sqlite3.Error as exc:
        raise EvidenceError(
            f"{path}: unreadable drill history ({exc}); move it aside to start a new one"
        ) from None
