"""Typed events: dispatch by type, the journal's names and data, subscribers and GateFinished."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_contract
from toolkit.core.errors import TargetError
from toolkit.core.events import (
    Bus,
    CaseFinished,
    ChecksCounted,
    DrillStep,
    Event,
    FaultInjected,
    FaultRolledBack,
    GateFinished,
    GateStarted,
    MinuteWindow,
    OrphanFound,
    RollbackFailed,
    ServiceLogCut,
)
from toolkit.core.runner import gate_run, load_locked

CONTRACT = '[contract]\nname = "ev"\nversion = "1.0.0"\n'


def test_bus_dispatches_by_type_in_subscription_order() -> None:
    bus = Bus()
    seen: list[str] = []
    bus.subscribe(lambda e: seen.append(f"all:{e.kind}"))
    bus.on(DrillStep, lambda e: seen.append(f"step:{e.fault}"))
    bus.on(FaultInjected, lambda e: seen.append(f"inject:{e.what}"))
    bus.emit(FaultInjected("kill", "SIGKILL"))
    bus.emit(ChecksCounted(3, 0))
    assert seen == ["all:chaos.inject", "step:kill", "inject:SIGKILL", "all:cycle.checks"]


def test_bus_refuses_what_is_not_an_event() -> None:
    with pytest.raises(TypeError, match="takes an Event"):
        Bus().emit("finding")  # type: ignore[arg-type]


def test_events_are_frozen() -> None:
    event = ChecksCounted(1, 2)
    with pytest.raises(AttributeError):
        event.passed = 5  # type: ignore[misc]


def test_payloads_keep_the_journal_entries_of_the_string_events() -> None:
    """The names and data the journal held when events were strings."""
    assert (OrphanFound({"pid": 7, "check": "x"}).kind, OrphanFound({"pid": 7}).payload()) == (
        "cycle.orphans", {"pid": 7})
    assert ServiceLogCut("a", {"cut": True, "bytes_dropped": 4}).payload() == {
        "service": "a", "cut": True, "bytes_dropped": 4}
    assert FaultRolledBack("kill", {"ok": 1}).payload() == {"fault": "kill", "ok": True,
                                                            "result": {"ok": 1}}
    assert RollbackFailed("hang", "gone").payload() == {"fault": "hang", "ok": False,
                                                        "error": "gone"}
    assert CaseFinished("T-1", "t", "s", "clean", 3, 0, []).payload() == {
        "attack_id": "T-1", "title": "t", "surface": "s", "status": "clean", "sent": 3,
        "findings": 0, "notes": [], "unanswered": 0, "dropped": 0,
        "retried": 0}
    window = MinuteWindow(2, {"big": "document"}, {"window": 2, "requests": 9})
    assert (window.kind, window.payload()) == ("soak.window", {"window": 2, "requests": 9})


def _journal(folder: Path) -> list[dict[str, Any]]:
    lines = (folder / "journal.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_a_run_journals_its_events_and_reports_its_seal(tmp_path: Path) -> None:
    c = load_locked(write_contract(tmp_path, CONTRACT))
    seen: list[Event] = []
    with gate_run(c, "cycle", "gate1", subscribers=[lambda bus: bus.subscribe(seen.append)]) as run:
        run.emit(OrphanFound({"pid": 1, "check": "recorded-process-alive"}))
        run.emit(ChecksCounted(1, 0))  # progress: not journaled
        result = run.seal("fail", {"failure": "orphan"})
    assert isinstance(seen[0], GateStarted) and seen[0].run_id == run.evidence.run_id
    assert isinstance(seen[-1], GateFinished) and seen[-1].result is result
    assert result.summary_path is not None
    entries = [(e["event"], e["data"]) for e in _journal(result.summary_path.parent)]
    assert ("cycle.orphans", {"pid": 1, "check": "recorded-process-alive"}) in entries
    assert not any(name in ("cycle.checks", "gate.started", "gate.finished")
                   for name, _ in entries)


def test_a_run_that_fails_reports_an_error_seal(tmp_path: Path) -> None:
    c = load_locked(write_contract(tmp_path, CONTRACT))
    finished: list[GateFinished] = []
    attach = [lambda bus: bus.on(GateFinished, finished.append)]
    with pytest.raises(TargetError), gate_run(c, "cycle", "gate1", subscribers=attach):
        raise TargetError("the stack did not start")
    assert [f.result.verdict for f in finished] == ["error"]
